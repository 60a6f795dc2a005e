"""HttpApi against an httpx mock transport: paths, bodies, auth header, error bodies."""

from __future__ import annotations

import json

import httpx
import pytest

from chat_events.api.protocol import Code
from chat_events.client.errors import ChatError
from chat_events.client.http import HttpApi


def api(handler: object, token: str | None = "tok") -> HttpApi:
    return HttpApi("ws://127.0.0.1:8000/ws", token, transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


async def test_dev_token_and_groups() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/v1/dev/token":
            return httpx.Response(200, json={"token": "t", "user_id": "alice", "expires_at_ms": 5})
        if request.method == "POST" and request.url.path == "/v1/groups":
            body = json.loads(request.content)
            return httpx.Response(201, json={**body, "owner_id": "alice"})
        return httpx.Response(204)

    async with api(handler, token=None) as http:
        assert http.base_url == "http://127.0.0.1:8000"
        token = await http.dev_token("alice", ttl_s=60)
        assert (token.token, token.user_id, token.expires_at_ms) == ("t", "alice", 5)
        http.token = token.token
        group = await http.create_group("team", ["bob"], group_id="g1")
        assert group.group_id == "g1" and group.member_ids == ("bob",) and group.owner_id == "alice"
        assert await http.remove_member("g1", "bob@x") == {}
    assert json.loads(seen[0].content) == {"user_id": "alice", "ttl_s": 60}
    assert "authorization" not in seen[0].headers
    assert seen[1].headers["authorization"] == "Bearer t"
    assert seen[2].method == "DELETE" and seen[2].url.path == "/v1/groups/g1/members/bob@x"


async def test_history_query() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"messages": [{"seq": 4}], "has_more": True})

    async with api(handler) as http:
        page = await http.history("dm:alice:bob", after_seq=3, limit=10)
    assert page.messages == ({"seq": 4},) and page.has_more
    assert seen[0].url.path == "/v1/conversations/dm:alice:bob/messages"
    assert dict(seen[0].url.params) == {"limit": "10", "after_seq": "3"}


async def test_error_bodies_raise_chat_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/conversations":
            return httpx.Response(403, json={"code": 8, "message": "not a member"})
        return httpx.Response(404, json={"detail": "Not Found"})

    async with api(handler) as http:
        with pytest.raises(ChatError) as caught:
            await http.conversations()
        assert caught.value.code == Code.FORBIDDEN and caught.value.data["http_status"] == 403
        with pytest.raises(ChatError) as caught:
            await http.dev_token("alice")
        assert caught.value.code == Code.NOT_FOUND and caught.value.message == "Not Found"


async def test_unreachable_server_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with api(handler) as http:
        with pytest.raises(ChatError) as caught:
            await http.health()
    assert caught.value.code == Code.UNAVAILABLE


async def test_conversation_actions_send_the_routes_bodies() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/read"):
            return httpx.Response(202, json={"conversation_id": "g1", "read_seq": 3, "status": "accepted"})
        return httpx.Response(202, json={"status": "accepted"})

    async with api(handler) as http:
        assert await http.read("dm:alice:bob", 99) == 3
        await http.set_conversation("g1", pinned=True)
        await http.remove_conversations(["g1", "dm:alice:bob"])
        await http.read_all()
        await http.set_settings(read_receipts=False)
    calls = [(r.method, r.url.path, json.loads(r.content) if r.content else None) for r in seen]
    assert calls == [
        ("POST", "/v1/conversations/dm:alice:bob/read", {"seq": 99}),
        ("PATCH", "/v1/conversations/g1", {"pinned": True, "muted": None, "hidden": None}),
        ("POST", "/v1/conversations/remove", {"conversation_ids": ["g1", "dm:alice:bob"]}),
        ("POST", "/v1/conversations/read-all", None),
        ("PUT", "/v1/settings", {"read_receipts": False}),
    ]
    assert all(r.headers["authorization"] == "Bearer tok" for r in seen)
