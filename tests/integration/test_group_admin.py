"""Group administration (issue 16, item 4) through the real edges, broker, worker and store: a
rename reaches every member's devices as a system message in order with the messages; a muted
member's sends are refused with 19 until unmuted; ownership moves (the previous owner becomes an
admin); a dissolved group takes no more posts and leaves "my groups"; "my groups" paged and
sorted; the group's detail with its members paged; a plain member's change, an outsider's and
bad input are refused (8, 5) and publish nothing. One worker and two edges serve the module
(the ``system`` fixture of test_edge_e2e); each test has its own users."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from chat_events.client import ChatClient, ChatError, HttpApi
from chat_events.codec import build_codec
from chat_events.events.types import Envelope, PersonalChatSent
from chat_events.topics import GROUP_EVENTS, PERSONAL_CHAT, TopicCatalog
from tests.integration.test_edge_e2e import System, system, uid
from tests.integration.worker_harness import read_topic

__all__ = ["system"]  # the module's worker and edges (a fixture)


async def api(system: System, user: str) -> HttpApi:
    return HttpApi(system.a.http, token=await system.token(user))


async def group_of(system: System, owner: str, members: list[str], name: str | None = None) -> str:
    async with await api(system, owner) as http:
        group = await http.create_group(name or f"g-{uuid.uuid4().hex[:6]}", members)
    assert not group.pending
    return group.group_id


def system_event(message: dict[str, Any]) -> dict[str, Any] | None:
    """The change a system message announces (its JSON content), or None for a user's message."""
    if message.get("kind") != "system":
        return None
    body = json.loads(message["content"])
    assert isinstance(body, dict)
    return body


def shown(message: dict[str, Any]) -> str:
    """A message as a chat shows it, for comparing sequences: ``event:<name>`` or its text."""
    change = system_event(message)
    return f"event:{change['event']}" if change else str(message["content"])


async def until_content(client: ChatClient, content: str, timeout: float = 30.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
    """Every message delivered to ``client`` up to and including the one with ``content``."""
    out: list[dict[str, Any]] = []
    while True:
        message = (await client.receive(timeout=timeout)).message
        out.append(message)
        if message.get("kind", "message") == "message" and message["content"] == content:
            return out


async def events_of(system: System, spec: Any, user: str) -> list[Envelope]:
    codec = build_codec(system.settings)
    topic = TopicCatalog(system.settings).resolve(spec).name
    return [e for e in await read_topic(system.settings, codec, topic) if e.user_id == user]


async def test_a_rename_reaches_every_members_devices_in_order_with_the_messages(system: System) -> None:
    alice, bob, carol = uid("alice"), uid("bob"), uid("carol")
    b1, b2 = await system.client(system.a, bob, "d1"), await system.client(system.b, bob, "d2")
    c = await system.client(system.b, carol)
    a = await system.client(system.a, alice)
    try:
        group = await group_of(system, alice, [bob, carol])
        await a.send("group", group, "before the rename")
        async with await api(system, alice) as http:
            answer = await http.update_group(group, name="Renamed", description="what we do")
        assert answer["name"] == "Renamed" and "status" not in answer
        await a.send("group", group, "after the rename")
        expected = ["event:groupCreated", "before the rename", "event:groupUpdated", "after the rename"]
        for client in (b1, b2, c):
            got = await until_content(client, "after the rename")
            assert [shown(m) for m in got] == expected
            assert [m["seq"] for m in got] == sorted(m["seq"] for m in got)
            change = system_event(got[2])
            assert change == {"event": "groupUpdated", "actor": alice, "name": "Renamed", "description": "what we do"}
            assert got[2]["sender_id"] == alice and got[2]["conversation_id"] == group
        async with await api(system, carol) as http:
            detail = await http.group_detail(group)
            history = await http.history(group)
        assert (detail["name"], detail["description"], detail["my_role"]) == ("Renamed", "what we do", "member")
        assert [shown(m) for m in reversed(history.messages)] == expected  # in place in the history (newest first)
    finally:
        for client in (a, b1, b2, c):
            await client.close()


async def test_a_muted_member_is_refused_19_until_unmuted(system: System) -> None:
    alice, bob, carol = uid("alice"), uid("bob"), uid("carol")
    group = await group_of(system, alice, [bob, carol])
    a = await system.client(system.a, alice)
    b = await system.client(system.a, bob)  # on the edge that serves the mute: applied at once (group_cache.py)
    try:
        async with await api(system, alice) as http:
            assert (await http.set_member_role(group, carol, "admin"))["role"] == "admin"
        async with await api(system, carol) as http:  # an admin mutes a plain member
            assert (await http.mute_member(group, bob))["muted"] is True
            detail = await http.group_detail(group)
        assert {m["user_id"]: m["muted"] for m in detail["members"]} == {alice: False, bob: True, carol: False}
        refused = f"muted-{uuid.uuid4().hex[:6]}"
        with pytest.raises(ChatError) as info:
            await b.send("group", group, "while muted", client_msg_id=refused)
        assert info.value.code == 19
        await b.send("user", alice, "a 1:1 is not muted")  # the mute is the group's only
        async with await api(system, carol) as http:
            assert (await http.unmute_member(group, bob))["muted"] is False
        await b.send("group", group, "unmuted again")
        got = await until_content(a, "unmuted again")
        shown_to_alice = [shown(m) for m in got]
        assert "while muted" not in shown_to_alice
        assert [s for s in shown_to_alice if s.startswith("event:groupMember")] == [
            "event:groupMemberRoleSet",
            "event:groupMemberMuted",
            "event:groupMemberMuted",
        ]
        mutes = [system_event(m) for m in got if shown(m) == "event:groupMemberMuted"]
        assert [(e["actor"], e["member"], e["muted"]) for e in mutes if e] == [(carol, bob, True), (carol, bob, False)]
        sent = [e.payload for e in await events_of(system, PERSONAL_CHAT, bob)]
        texts = sorted(p.payload for p in sent if isinstance(p, PersonalChatSent))  # two partitions: any order
        assert texts == ["a 1:1 is not muted", "unmuted again"]  # the refused send never reached Kafka
    finally:
        await a.close()
        await b.close()


async def test_ownership_moves_and_the_previous_owner_becomes_an_admin(system: System) -> None:
    alice, bob, carol = uid("alice"), uid("bob"), uid("carol")
    group = await group_of(system, alice, [bob, carol])
    c = await system.client(system.b, carol)
    try:
        async with await api(system, alice) as http:
            assert (await http.transfer_ownership(group, bob))["role"] == "owner"
            detail = await http.group_detail(group)
            assert (detail["owner_id"], detail["my_role"]) == (bob, "admin")
            with pytest.raises(ChatError) as info:  # no longer the owner's to do
                await http.dissolve_group(group)
            assert info.value.code == 8
        assert {m["user_id"]: m["role"] for m in detail["members"]} == {alice: "admin", bob: "owner", carol: "member"}
        async with await api(system, bob) as http:
            assert (await http.set_member_role(group, alice, "member"))["role"] == "member"
            mine = await http.my_groups()
        assert [(g["group_id"], g["role"]) for g in mine["groups"]] == [(group, "owner")]
        await c.send("group", group, "marker")
        got = [system_event(m) for m in await until_content(c, "marker")]
        transfer = next(e for e in got if e and e["event"] == "groupMemberRoleSet")
        assert transfer == {
            "event": "groupMemberRoleSet",
            "actor": alice,
            "member": bob,
            "role": "owner",
            "previous_owner": alice,
        }
    finally:
        await c.close()


async def test_a_dissolved_group_takes_no_posts_and_leaves_my_groups(system: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    group = await group_of(system, alice, [bob])
    kept = await group_of(system, alice, [bob])
    b = await system.client(system.a, bob)
    a = await system.client(system.a, alice)
    try:
        async with await api(system, bob) as http:
            with pytest.raises(ChatError) as info:  # only the owner dissolves
                await http.dissolve_group(group)
            assert info.value.code == 8
        async with await api(system, alice) as http:
            assert (await http.dissolve_group(group))["dissolved"] is True
            assert [g["group_id"] for g in (await http.my_groups())["groups"]] == [kept]
            detail = await http.group_detail(group)  # its last members still see it, and its history
            assert detail["dissolved"] is True
            with pytest.raises(ChatError) as info:
                await http.update_group(group, name="again")
            assert info.value.code == 8
        for client in (a, b):
            with pytest.raises(ChatError) as info:
                await client.send("group", group, "after the dissolve")
            assert info.value.code == 8
        await a.send("group", kept, "the other group still works")
        got = await until_content(b, "the other group still works")
        assert "event:groupDissolved" in [shown(m) for m in got]
    finally:
        await a.close()
        await b.close()


async def test_my_groups_are_paged_and_sorted(system: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    made = [await group_of(system, bob, [alice], name) for name in ("banana", "Apple", "cherry")]
    async with await api(system, alice) as http:
        orders = {}
        for sort_by in ("name", "created", "joined"):
            first = await http.my_groups(sort_by=sort_by, limit=2)
            assert first["has_more"] is True and first["next_cursor"]
            rest = await http.my_groups(sort_by=sort_by, limit=2, cursor=first["next_cursor"])
            assert rest["has_more"] is False and rest["next_cursor"] is None
            orders[sort_by] = [g["name"] for g in first["groups"] + rest["groups"]]
        whole = (await http.my_groups())["groups"]
    assert orders == {
        "name": ["Apple", "banana", "cherry"],
        "created": ["cherry", "Apple", "banana"],
        "joined": ["cherry", "Apple", "banana"],
    }
    assert {g["group_id"] for g in whole} == set(made) and {g["role"] for g in whole} == {"member"}
    assert all(g["owner_id"] == bob for g in whole)


async def test_the_detail_pages_the_members_with_roles(system: System) -> None:
    owner = uid("owner")
    members = sorted(uid(f"m{i}") for i in range(5))
    group = await group_of(system, owner, members)
    async with await api(system, owner) as http:
        await http.set_member_role(group, members[0], "admin")
        pages, after = [], None
        while True:
            detail = await http.group_detail(group, members_after=after, members_limit=2)
            pages.append([m["user_id"] for m in detail["members"]])
            if not detail["members_has_more"]:
                break
            after = detail["members"][-1]["user_id"]
    everyone = sorted([owner, *members])
    assert [u for page in pages for u in page] == everyone and [len(p) for p in pages] == [2, 2, 2]
    assert detail["member_count"] == 6
    async with await api(system, members[1]) as http:
        first = await http.group_detail(group, members_limit=10)
    roles = {m["user_id"]: m["role"] for m in first["members"]}
    assert roles[owner] == "owner" and roles[members[0]] == "admin" and roles[members[1]] == "member"
    assert all(m["joined_at_ms"] > 0 for m in first["members"]) and first["my_role"] == "member"


async def test_a_plain_members_and_an_outsiders_changes_are_refused_8_and_publish_nothing(system: System) -> None:
    alice, bob, carol, eve = uid("alice"), uid("bob"), uid("carol"), uid("eve")
    group = await group_of(system, alice, [bob, carol])
    for user in (bob, eve):
        async with await api(system, user) as http:
            calls = [
                http.update_group(group, name="mine now"),
                http.set_member_role(group, carol, "admin"),
                http.transfer_ownership(group, user),
                http.mute_member(group, carol),
                http.dissolve_group(group),
            ]
            for call in calls:
                with pytest.raises(ChatError) as info:
                    await call
                assert (info.value.code, info.value.data["http_status"]) == (8, 403)
            if user == eve:
                assert "no such group, or you are not a member" in info.value.message
                with pytest.raises(ChatError) as info:
                    await http.group_detail(group)
                assert info.value.code == 8
        async with await api(system, alice) as http:
            assert (await http.group_detail(group))["name"] != "mine now"
    assert await events_of(system, GROUP_EVENTS, bob) == []
    assert await events_of(system, GROUP_EVENTS, eve) == []


BAD_INPUT = [
    ("PATCH", "", {"name": 123}, "name"),
    ("PATCH", "", {"name": ""}, "name"),
    ("PATCH", "", {"avatar_url": "ftp://x/y.png"}, "avatar_url"),
    ("PATCH", "", {"description": ["a"]}, "description"),
    ("PATCH", "", {"name": "x" * 201}, "name"),
    ("PATCH", "", {}, "body"),
    ("PUT", "/members/{bob}/role", {"role": "king"}, "role"),
    ("PUT", "/members/{bob}/role", {"role": 1}, "role"),
    ("PUT", "/members/{bob}/mute", {"muted": "yes"}, "muted"),
    ("PUT", "/members/{bob}/mute", {"muted": True, "until_ms": -1}, "until_ms"),
    ("PUT", "/members/{bob}/mute", {"muted": True, "until_ms": "soon"}, "until_ms"),
    ("PUT", "/members/bad%20id/mute", {"muted": True}, "member_id"),
    ("POST", "/owner", {"user_id": 5}, "user_id"),
    ("POST", "/owner", {}, "user_id"),
    ("GET_LIST", "?sort_by=size", None, "sort_by"),
    ("GET_LIST", "?cursor=junk", None, "cursor"),
    ("GET_LIST", "?limit=0", None, "limit"),
]


async def test_bad_input_is_refused_5_and_publishes_nothing(system: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    group = await group_of(system, alice, [bob])
    headers = {"Authorization": f"Bearer {await system.token(alice)}"}
    async with httpx.AsyncClient(base_url=system.a.http, headers=headers) as http:
        for method, tail, body, field in BAD_INPUT:
            if method == "GET_LIST":
                response = await http.get(f"/v1/groups{tail}")
            else:
                response = await http.request(method, f"/v1/groups/{group}{tail.format(bob=bob)}", json=body)
            answer = response.json()
            assert (response.status_code, answer["code"]) == (422, 5), (method, tail, body, answer)
            assert field in answer["message"], (field, answer)
    assert [e.name for e in await events_of(system, GROUP_EVENTS, alice)] == ["groupCreated"]


async def test_a_removed_member_is_told_and_then_gets_nothing_more(system: System) -> None:
    alice, bob, carol = uid("alice"), uid("bob"), uid("carol")
    b = await system.client(system.b, bob)
    c = await system.client(system.a, carol)
    a = await system.client(system.a, alice)
    try:
        group = await group_of(system, alice, [bob, carol])
        async with await api(system, alice) as http:
            await http.remove_member(group, bob)
        await a.send("group", group, "after bob left")
        await a.send("user", bob, "marker")
        got = await until_content(b, "marker")
        removed = [e for e in map(system_event, got) if e and e["event"] == "groupMemberLeft"]
        assert removed and removed[0]["member"] == bob  # "alice removed you", as WhatsApp shows it
        assert "after bob left" not in [m["content"] for m in got]
        seen = [shown(m) for m in await until_content(c, "after bob left")]
        assert seen == ["event:groupCreated", "event:groupMemberLeft", "after bob left"]
    finally:
        for client in (a, b, c):
            await client.close()
