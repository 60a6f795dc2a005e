"""``HttpApi``: the edge's small HTTP API (dev tokens, groups, history, conversations, health).

Error bodies are ``{"code": int, "message": str}`` and raise :class:`ChatError` with that code
(``data["http_status"]`` holds the status); a body of another shape gets a code from the status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from chat_events.api.protocol import Code
from chat_events.client.errors import ChatError
from chat_events.client.group_http import GroupAdminApi
from chat_events.client.urls import http_url

_STATUS_CODES = {
    400: Code.INVALID_FIELD,
    401: Code.UNAUTHORIZED,
    403: Code.FORBIDDEN,
    404: Code.NOT_FOUND,
    413: Code.PAYLOAD_TOO_LARGE,
    422: Code.INVALID_FIELD,
    429: Code.RATE_LIMITED,
    503: Code.UNAVAILABLE,
    504: Code.UNAVAILABLE,
}


@dataclass(frozen=True, slots=True)
class DevToken:
    token: str
    user_id: str
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class Group:
    group_id: str
    name: str
    owner_id: str
    member_ids: tuple[str, ...]
    pending: bool = False
    """True when the edge answered 202: accepted, but the workers had not applied it yet."""

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Group:
        return cls(
            group_id=str(data["group_id"]),
            name=str(data.get("name", "")),
            owner_id=str(data.get("owner_id", "")),
            member_ids=tuple(str(m) for m in data.get("member_ids", [])),
            pending=data.get("status") == "pending",
        )


@dataclass(frozen=True, slots=True)
class HistoryPage:
    messages: tuple[dict[str, Any], ...]
    """Message views, ascending by conversation seq (newest first for ``before_seq``)."""
    has_more: bool
    next_from_seq: int | None = None
    """For a range (:meth:`HttpApi.history_range`): where it goes on when ``has_more``."""
    page_end_seq: int | None = None
    """The seq of the page's last message read, shown or hidden by a block: the next page's
    ``before_seq`` (newest first) or ``after_seq`` (ascending)."""


class HttpApi(GroupAdminApi):
    """``base_url`` is ``http://host:port`` (a ``ws://host:port/ws`` URL is accepted too).

    ``token`` authorises every call but :meth:`dev_token` and the health checks; it may be set
    later (``api.token = (await api.dev_token("alice")).token``).
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = http_url(base_url)
        self.token = token
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport)

    async def __aenter__(self) -> HttpApi:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def dev_token(self, user_id: str, ttl_s: int | None = None) -> DevToken:
        """A signed token for ``user_id`` (only when the edge runs in development mode, else NOT_FOUND)."""
        body: dict[str, Any] = {"user_id": user_id}
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        data = await self._call("POST", "/v1/dev/token", json=body, auth=False)
        return DevToken(str(data["token"]), str(data.get("user_id", user_id)), int(data.get("expires_at_ms", 0)))

    async def create_group(self, name: str, member_ids: list[str], group_id: str | None = None) -> Group:
        body: dict[str, Any] = {"name": name, "member_ids": list(member_ids)}
        if group_id is not None:
            body["group_id"] = group_id
        return Group.from_data(await self._call("POST", "/v1/groups", json=body))

    async def get_group(self, group_id: str) -> Group:
        return Group.from_data(await self._call("GET", f"/v1/groups/{_seg(group_id)}"))

    async def add_member(self, group_id: str, user_id: str) -> dict[str, Any]:
        return await self._call("POST", f"/v1/groups/{_seg(group_id)}/members", json={"user_id": user_id})

    async def remove_member(self, group_id: str, user_id: str) -> dict[str, Any]:
        return await self._call("DELETE", f"/v1/groups/{_seg(group_id)}/members/{_seg(user_id)}")

    async def history(
        self, conversation_id: str, after_seq: int | None = None, before_seq: int | None = None, limit: int = 50
    ) -> HistoryPage:
        """A page of a conversation's messages by conversation seq: after ``after_seq`` (ascending), or
        before ``before_seq`` (newest first); neither = the newest page."""
        params: dict[str, int] = {"limit": limit}
        if after_seq is not None:
            params["after_seq"] = after_seq
        if before_seq is not None:
            params["before_seq"] = before_seq
        data = await self._call("GET", f"/v1/conversations/{_seg(conversation_id)}/messages", params=params)
        messages = data.get("messages", [])
        end = data.get("page_end_seq")
        return HistoryPage(
            tuple(m for m in messages if isinstance(m, dict)),
            bool(data.get("has_more", False)),
            page_end_seq=end if isinstance(end, int) else None,
        )

    async def history_range(self, conversation_id: str, from_seq: int, to_seq: int, limit: int = 50) -> HistoryPage:
        """The messages with ``from_seq <= seq <= to_seq``, ascending, at most ``limit``; with
        ``has_more``, ask again from ``next_from_seq``."""
        params = {"from_seq": from_seq, "to_seq": to_seq, "limit": limit}
        data = await self._call("GET", f"/v1/conversations/{_seg(conversation_id)}/messages", params=params)
        messages = tuple(m for m in data.get("messages", []) if isinstance(m, dict))
        next_from = data.get("next_from_seq")
        return HistoryPage(
            messages, bool(data.get("has_more", False)), next_from if isinstance(next_from, int) else None
        )

    async def conversations(self, limit: int = 50) -> list[dict[str, Any]]:
        """The first page of this user's list (pinned first, then the latest activity)."""
        data = await self.conversation_page(limit=limit)
        return [c for c in data.get("conversations", []) if isinstance(c, dict)]

    async def conversation_page(
        self, *, limit: int = 50, cursor: str | None = None, since_version: int | None = None
    ) -> dict[str, Any]:
        """One page of the list, or of the rows changed since ``since_version``: ``{"conversations",
        "has_more", "next_cursor", "version"}`` (docs/protocol.md)."""
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        if since_version is not None:
            params["since_version"] = since_version
        return await self._call("GET", "/v1/conversations", params=params)

    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/v1/conversations/{_seg(conversation_id)}")

    async def conversation_details(self, conversation_ids: list[str]) -> list[dict[str, Any]]:
        data = await self._call("POST", "/v1/conversations/detail", json={"conversation_ids": conversation_ids})
        return list(data["conversations"])

    async def settings(self) -> dict[str, Any]:
        """``{"read_receipts": bool, "show_last_seen": bool}``: this user's stored settings."""
        return await self._call("GET", "/v1/settings")

    async def unread(self) -> dict[str, Any]:
        """``{"total", "groups", "conversations": {id: unread}}`` (muted ones not in the totals)."""
        return await self._call("GET", "/v1/unread")

    async def read_by(self, conversation_id: str, seq: int) -> list[str]:
        data = await self._call("GET", f"/v1/conversations/{_seg(conversation_id)}/read-by", params={"seq": seq})
        return list(data["read_by"])

    async def read(self, conversation_id: str, seq: int) -> int:
        """``POST /v1/conversations/{id}/read``, as the ``read`` frame: returns the read seq the
        edge accepted (clamped to the last message); every device then gets a ``conversation`` push."""
        data = await self._call("POST", f"/v1/conversations/{_seg(conversation_id)}/read", json={"seq": seq})
        return int(data["read_seq"])

    async def set_conversation(
        self, conversation_id: str, *, pinned: bool | None = None, muted: bool | None = None, hidden: bool | None = None
    ) -> None:
        """``PATCH /v1/conversations/{id}``: pin, mute or remove (``hidden=True``) one conversation."""
        body = {"pinned": pinned, "muted": muted, "hidden": hidden}
        await self._call("PATCH", f"/v1/conversations/{_seg(conversation_id)}", json=body)

    async def remove_conversations(self, conversation_ids: list[str]) -> None:
        """``POST /v1/conversations/remove``: take several conversations off the list (until a new message)."""
        await self._call("POST", "/v1/conversations/remove", json={"conversation_ids": list(conversation_ids)})

    async def read_all(self) -> None:
        """``POST /v1/conversations/read-all``: mark every conversation read."""
        await self._call("POST", "/v1/conversations/read-all")

    async def set_settings(self, *, read_receipts: bool | None = None, show_last_seen: bool | None = None) -> None:
        """``PUT /v1/settings`` with the settings given (applied shortly after: :meth:`settings`
        reads the stored values)."""
        body = {"read_receipts": read_receipts, "show_last_seen": show_last_seen}
        await self._call("PUT", "/v1/settings", json={k: v for k, v in body.items() if v is not None})

    async def presence(self, user_ids: Sequence[str]) -> list[dict[str, Any]]:
        """``GET /v1/presence``: ``[{"user_id", "status", "last_seen_ms"}]`` for 1-500 users, in
        the order asked (``unknown`` for anyone this user does not talk to)."""
        return list((await self._call("GET", "/v1/presence", params={"user_ids": ",".join(user_ids)}))["presence"])

    async def block(self, user_id: str) -> dict[str, Any]:
        """``POST /v1/blocks``: ``{"user_id", "blocked": true, "since_ms"}`` once stored (with
        ``"status": "pending"`` when answered 202)."""
        return await self._call("POST", "/v1/blocks", json={"user_id": user_id})

    async def unblock(self, user_id: str) -> dict[str, Any]:
        """``DELETE /v1/blocks/{user_id}``."""
        return await self._call("DELETE", f"/v1/blocks/{_seg(user_id)}")

    async def blocks(self) -> list[dict[str, Any]]:
        """Whom this user blocks, newest first: ``[{"user_id", "since_ms"}]``."""
        return list((await self._call("GET", "/v1/blocks"))["blocks"])

    async def health(self) -> dict[str, Any]:
        return await self._call("GET", "/healthz", auth=False)

    async def ready(self) -> dict[str, Any]:
        """``{"ready": bool, "edge_id": ...}``; a not-ready edge (HTTP 503) is an answer, not an error."""
        return await self._call("GET", "/readyz", auth=False, also_ok=frozenset({503}))

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        auth: bool = True,
        also_ok: frozenset[int] = frozenset(),
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if auth and self.token else None
        try:
            response = await self._http.request(method, path, json=json, params=params, headers=headers)
        except httpx.TransportError as exc:
            raise ChatError(Code.UNAVAILABLE, f"{method} {self.base_url}{path}: {exc or type(exc).__name__}") from exc
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {"message": response.text[:200]}
        if response.is_success or response.status_code in also_ok:
            return body if isinstance(body, dict) else {"value": body}
        raise _error(response.status_code, body)


def _error(status: int, body: Any) -> ChatError:
    data: dict[str, Any] = {"http_status": status}
    if isinstance(body, dict) and isinstance(body.get("code"), int) and not isinstance(body.get("code"), bool):
        extra = body.get("data")
        if isinstance(extra, dict):
            data.update(extra)
        return ChatError(body["code"], str(body.get("message", "")), data)
    fallback = _STATUS_CODES.get(status, Code.INVALID_FIELD if status < 500 else Code.INTERNAL)
    detail = (body.get("message") or body.get("detail")) if isinstance(body, dict) else None
    return ChatError(fallback, str(detail or f"HTTP {status}"), data)


def _seg(value: str) -> str:
    """One path segment (ids may hold ``:`` and ``@``)."""
    return quote(value, safe="@:")
