"""HttpApi's group administration calls (client/group_http.py) against an httpx mock
transport: methods, paths, query parameters and bodies; and the CLI's answer lines."""

from __future__ import annotations

import json

import httpx

from chat_events.cli.group_cmd import admin_line
from chat_events.client.http import HttpApi


async def test_every_group_route_is_called_as_documented() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    transport = httpx.MockTransport(handler)
    async with HttpApi("http://127.0.0.1:8000", "tok", transport=transport) as http:
        await http.my_groups(sort_by="name", cursor="c1", limit=5)
        await http.group_detail("g1", members_after="bob", members_limit=2)
        await http.update_group("g1", name="New", description="")
        await http.set_member_role("g1", "bob@x", "admin")
        await http.transfer_ownership("g1", "bob")
        await http.mute_member("g1", "bob", until_ms=99)
        await http.unmute_member("g1", "bob")
        await http.dissolve_group("g1")
    calls = [(r.method, r.url.path, dict(r.url.params), json.loads(r.content) if r.content else None) for r in seen]
    assert calls == [
        ("GET", "/v1/groups", {"sort_by": "name", "limit": "5", "cursor": "c1"}, None),
        ("GET", "/v1/groups/g1", {"members_limit": "2", "members_after": "bob"}, None),
        ("PATCH", "/v1/groups/g1", {}, {"name": "New", "description": ""}),
        ("PUT", "/v1/groups/g1/members/bob@x/role", {}, {"role": "admin"}),
        ("POST", "/v1/groups/g1/owner", {}, {"user_id": "bob"}),
        ("PUT", "/v1/groups/g1/members/bob/mute", {}, {"muted": True, "until_ms": 99}),
        ("PUT", "/v1/groups/g1/members/bob/mute", {}, {"muted": False}),
        ("DELETE", "/v1/groups/g1", {}, None),
    ]
    assert all(r.headers["authorization"] == "Bearer tok" for r in seen)


def test_the_cli_prints_one_line_per_answer() -> None:
    assert admin_line({"groups": [{"group_id": "g1", "name": "T", "role": "owner"}]}) == "g1 (T): owner"
    assert admin_line({"groups": []}) == "no groups"
    assert admin_line({"group_id": "g1", "muted": True}) == "group_id=g1, muted=True"
    assert admin_line({"group_id": "g1", "status": "pending"}).startswith("group_id=g1 (accepted;")
