"""Group administration over HTTP (issue 16, item 4): the methods :class:`~chat_events.client.http.HttpApi`
gets from this mixin. Each change answers once the store shows it (``status: "pending"`` in the
answer when the workers were slow: HTTP 202); a refusal raises :class:`~chat_events.client.errors.ChatError`
(8 for an outsider or a role that may not, 5 for bad input)."""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote


def _seg(value: str) -> str:
    return quote(value, safe="@:")


class _Caller(Protocol):
    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        auth: bool = True,
        also_ok: frozenset[int] = frozenset(),
    ) -> dict[str, Any]: ...


class GroupAdminApi:
    async def my_groups(
        self: _Caller, *, sort_by: str = "joined", cursor: str | None = None, limit: int = 50
    ) -> dict[str, Any]:
        """``{"groups": [...], "has_more", "next_cursor"}``; ``sort_by``: joined, created, name."""
        params: dict[str, Any] = {"sort_by": sort_by, "limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        return await self._call("GET", "/v1/groups", params=params)

    async def group_detail(
        self: _Caller, group_id: str, *, members_after: str | None = None, members_limit: int = 100
    ) -> dict[str, Any]:
        """The group's profile, ``my_role``, ``member_count`` and a page of ``members`` (by user
        id; pass the last one as ``members_after`` while ``members_has_more``)."""
        params: dict[str, Any] = {"members_limit": members_limit}
        if members_after is not None:
            params["members_after"] = members_after
        return await self._call("GET", f"/v1/groups/{_seg(group_id)}", params=params)

    async def update_group(
        self: _Caller,
        group_id: str,
        *,
        name: str | None = None,
        avatar_url: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        changes = {"name": name, "avatar_url": avatar_url, "description": description}
        body = {k: v for k, v in changes.items() if v is not None}
        return await self._call("PATCH", f"/v1/groups/{_seg(group_id)}", json=body)

    async def set_member_role(self: _Caller, group_id: str, user_id: str, role: str) -> dict[str, Any]:
        """``role``: ``admin`` or ``member`` (the owner's to give)."""
        path = f"/v1/groups/{_seg(group_id)}/members/{_seg(user_id)}/role"
        return await self._call("PUT", path, json={"role": role})

    async def transfer_ownership(self: _Caller, group_id: str, user_id: str) -> dict[str, Any]:
        """The owner hands the group to ``user_id`` and becomes an admin."""
        return await self._call("POST", f"/v1/groups/{_seg(group_id)}/owner", json={"user_id": user_id})

    async def mute_member(self: _Caller, group_id: str, user_id: str, *, until_ms: int = 0) -> dict[str, Any]:
        """Mute ``user_id`` in the group (their sends there are refused with 19) until unmuted,
        or until ``until_ms``."""
        path = f"/v1/groups/{_seg(group_id)}/members/{_seg(user_id)}/mute"
        return await self._call("PUT", path, json={"muted": True, "until_ms": until_ms})

    async def unmute_member(self: _Caller, group_id: str, user_id: str) -> dict[str, Any]:
        path = f"/v1/groups/{_seg(group_id)}/members/{_seg(user_id)}/mute"
        return await self._call("PUT", path, json={"muted": False})

    async def dissolve_group(self: _Caller, group_id: str) -> dict[str, Any]:
        """The owner dissolves the group: no more posts; it leaves everyone's "my groups"."""
        return await self._call("DELETE", f"/v1/groups/{_seg(group_id)}")
