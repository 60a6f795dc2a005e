"""The conversation list through the real edges, broker, worker and store (issue 15): read
progress across a user's devices, read receipts, the list (pinned first, removed until a new
message, paged, "changed since"), unread counts and "mark everything read", and bad input that
never reaches Kafka. One worker and two edges serve the module; each test has its own users."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chat_events.client import ChatClient, ChatError, HttpApi
from chat_events.codec import build_codec
from chat_events.events.conversation_events import ConversationFlagsSet, ConversationRead
from chat_events.events.conversations import direct_conversation_id
from chat_events.topics import INBOX, TopicCatalog
from tests.integration.test_edge_e2e import System, receive_n, system, uid
from tests.integration.worker_harness import read_topic

__all__ = ["system"]  # the module's worker and edges (a fixture)


async def next_change(client: ChatClient, conversation_id: str, timeout: float = 30.0) -> dict[str, Any]:  # noqa: ASYNC109
    """The next ``conversation`` push about ``conversation_id``."""
    async with asyncio.timeout(timeout):
        while True:
            change = await client.conversations.changes.get()
            if change["conversation_id"] == conversation_id:
                return change


async def changes_of(client: ChatClient, conversation_ids: set[str], timeout: float = 30.0) -> dict[str, Any]:  # noqa: ASYNC109
    """The next ``conversation`` push of each of ``conversation_ids``, in whatever order they come."""
    got: dict[str, Any] = {}
    async with asyncio.timeout(timeout):
        while set(got) != conversation_ids:
            change = await client.conversations.changes.get()
            if change["conversation_id"] in conversation_ids:
                got[change["conversation_id"]] = change
    return got


async def receipts_until(client: ChatClient, wanted: dict[str, int], timeout: float = 30.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
    """The ``receipt`` pushes until one of each ``kind -> seq`` in ``wanted`` (or a higher seq)
    has come (acks and reads take different paths: in either order)."""
    got: list[dict[str, Any]] = []

    def done() -> bool:
        return all(any(r["kind"] == k and r["seq"] >= seq for r in got) for k, seq in wanted.items())

    async with asyncio.timeout(timeout):
        while not done():
            got.append(await client.conversations.receipts.get())
    return got


async def api(system: System, user: str) -> HttpApi:
    return HttpApi(system.a.http, token=await system.token(user))


async def test_read_on_one_device_clears_the_other_and_the_sender_gets_a_receipt(system: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    conv = direct_conversation_id(alice, bob)
    a = await system.client(system.a, alice)
    phone, laptop = await system.client(system.a, bob, "phone"), await system.client(system.b, bob, "laptop")
    try:
        for i in range(3):
            await a.send("user", bob, f"m{i}")
        await receive_n(phone, 3)
        await receive_n(laptop, 3)
        async with await api(system, bob) as http:
            assert (await http.conversation(conv))["unread"] == 3
            assert (await http.unread())["total"] == 3
            assert await phone.read(conv, 99) == 3  # clamped to the last message
            on_laptop = await next_change(laptop, conv)  # one push: the badge clears
            assert (on_laptop["read_seq"], on_laptop["unread"]) == (3, 0)
            receipts = await receipts_until(a, {"delivered": 3, "read": 3})  # sent, delivered, read
            assert {"conversation_id": conv, "user_id": bob, "kind": "read", "seq": 3} in receipts
            assert all(r["conversation_id"] == conv and r["user_id"] == bob for r in receipts)
            delivered = [r["seq"] for r in receipts if r["kind"] == "delivered"]
            assert delivered == sorted(delivered) and delivered[-1] == 3
            assert await phone.read(conv, 1) == 1  # an older read after a newer one...
            again = await next_change(laptop, conv)  # (the row as it is, pushed again: replays heal lost pushes)
            assert (again["read_seq"], again["unread"], again["version"]) == (3, 0, on_laptop["version"])
            await phone.set_conversation(conv, pinned=True)  # (applied after it, in order)
            pinned = await next_change(laptop, conv)
            assert (pinned["read_seq"], pinned["unread"], pinned["pinned"]) == (3, 0, True)  # ...changed nothing
            assert pinned["version"] > on_laptop["version"]
            row = await http.conversation(conv)
            assert (row["read_seq"], row["unread"], row["version"], row["peer_id"]) == (3, 0, pinned["version"], alice)
            assert (await http.unread())["total"] == 0
        async with await api(system, alice) as http:
            assert await http.read_by(conv, 3) == [bob]
            assert await http.read_by(conv, 4) == []
    finally:
        for client in (a, phone, laptop):
            await client.close()


async def test_a_user_who_turns_read_receipts_off_sends_none_and_still_syncs_reads(system: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    conv = direct_conversation_id(alice, bob)
    a, phone, laptop = (
        await system.client(system.a, alice),
        await system.client(system.a, bob, "phone"),
        await system.client(system.b, bob, "laptop"),
    )
    try:
        for i in range(2):
            await a.send("user", bob, f"m{i}")
        await receive_n(phone, 2)
        await receive_n(laptop, 2)
        await phone.set_settings(read_receipts=False)
        await phone.read(conv, 1)
        assert (await next_change(laptop, conv))["read_seq"] == 1  # own devices still sync
        async with await api(system, bob) as http:
            assert (await http.settings())["read_receipts"] is False
        await phone.set_settings(read_receipts=True)
        await phone.read(conv, 2)  # applied in order after the two above
        receipts = await receipts_until(a, {"read": 2})
        assert [r["seq"] for r in receipts if r["kind"] == "read"] == [2]  # none for the read while off
    finally:
        for client in (a, phone, laptop):
            await client.close()


async def test_the_list_pages_pinned_first_and_removed_ones_come_back_with_a_message(system: System) -> None:
    bob, peers = uid("bob"), [uid(f"p{i:03d}") for i in range(500)]
    convs = [direct_conversation_id(bob, p) for p in peers]
    b = await system.client(system.a, bob)
    try:
        for peer in peers:  # bob's own copies make 500 rows in his list
            await b.send("user", peer, "hi")
        await receive_n(b, 500, timeout=120)
        async with await api(system, bob) as http:
            before = (await http.conversation_page(limit=1))["version"]
            await b.set_conversation(convs[10], convs[20], pinned=True)
            await b.set_conversation(convs[30], convs[40], convs[50], hidden=True)
            await changes_of(b, {convs[10], convs[20], convs[30], convs[40], convs[50]})
            seen: list[dict[str, Any]] = []
            cursor = None
            while True:
                page = await http.conversation_page(limit=50, cursor=cursor)
                seen += page["conversations"]
                if not page["has_more"]:
                    break
                cursor = page["next_cursor"]
            ids = [c["conversation_id"] for c in seen]
            assert len(ids) == len(set(ids)) == 497  # no repeats, the removed ones absent
            assert set(ids[:2]) == {convs[10], convs[20]} and all(c["pinned"] for c in seen[:2])
            assert not {convs[30], convs[40], convs[50]} & set(ids)
            activity = [c["last_activity_ms"] for c in seen[2:]]
            assert activity == sorted(activity, reverse=True)
            changed = await http.conversation_page(since_version=before, limit=200)
            assert {c["conversation_id"] for c in changed["conversations"]} == {
                convs[10],
                convs[20],
                convs[30],
                convs[40],
                convs[50],
            }
            assert not changed["has_more"] and changed["version"] > before
            await b.send("user", peers[30], "back again")  # a new message shows a removed one again
            await receive_n(b, 1)
            row = await http.conversation(convs[30])
            assert not row["hidden"] and row["last_seq"] == 2
            assert convs[30] in {c["conversation_id"] for c in (await http.conversation_page(limit=3))["conversations"]}
    finally:
        await b.close()


async def test_unread_totals_leave_muted_out_and_read_all_clears_everything(system: System) -> None:
    bob, carol, dave = uid("bob"), uid("carol"), uid("dave")
    async with HttpApi(system.a.http, token=await system.token(carol)) as http:
        group = await http.create_group("team", [bob, dave])
    b, c = await system.client(system.a, bob), await system.client(system.b, carol)
    try:
        await c.send("user", bob, "1:1")
        await c.send("group", group.group_id, "g1 @bob", mentions=[bob])
        await c.send("group", group.group_id, "g2")
        await receive_n(b, 3)
        await b.set_conversation(direct_conversation_id(bob, carol), muted=True)
        await next_change(b, direct_conversation_id(bob, carol))
        async with await api(system, bob) as http:
            counts = await http.unread()
            assert counts["total"] == 2 and counts["groups"] == 2  # the muted 1:1 is left out
            assert counts["conversations"] == {direct_conversation_id(bob, carol): 1, group.group_id: 2}
            assert (await http.conversation(group.group_id))["unread_mentions"] == 1  # the "@ me" badge
            await b.read_all()
            await changes_of(b, {group.group_id, direct_conversation_id(bob, carol)})
            assert await http.unread() == {"total": 0, "groups": 0, "conversations": {}}
            detail = await http.conversation_details([group.group_id, direct_conversation_id(bob, carol)])
            # the group's seq 1 is its groupCreated system message, which never counts as unread
            assert [d["read_seq"] for d in detail] == [3, 1] and detail[0]["name"] == "team"
            assert detail[0]["unread_mentions"] == 0
    finally:
        await b.close()
        await c.close()


async def test_bad_conversation_input_gets_its_code_and_nothing_reaches_kafka(system: System) -> None:
    bob, eve, mallory = uid("bob"), uid("eve"), uid("mallory")
    b = await system.client(system.a, bob)
    try:
        cases = [
            (b.read(direct_conversation_id(eve, mallory), 1), 8),  # not a member
            (b.read(f"dm:{bob}:{bob}", 1), 5),
            (b.read(f"dm:{bob}", 1), 5),
            (b.set_conversation(direct_conversation_id(bob, eve)), 5),  # no flag
            (b.set_conversation(*[direct_conversation_id(bob, f"u{i}") for i in range(101)], pinned=True), 5),
            (b.set_conversation("no-such-group", muted=True), 8),
        ]
        for call, code in cases:
            with pytest.raises(ChatError) as raised:
                await call
            assert raised.value.code == code, raised.value
        with pytest.raises(ChatError) as raised:
            await b._call("read", {"conversation_id": direct_conversation_id(bob, eve), "seq": -1})
        assert raised.value.code == 5
        async with await api(system, bob) as http:
            for params, code in [({"limit": 0}, 5), ({"limit": 201}, 5), ({"cursor": "nope"}, 5)]:
                with pytest.raises(ChatError) as raised:
                    await http.conversation_page(**params)
                assert raised.value.code == code
            with pytest.raises(ChatError) as raised:
                await http.conversation_details([direct_conversation_id(bob, eve), "no-such-group"])
            assert raised.value.code == 11
        codec = build_codec(system.settings)
        topic = TopicCatalog(system.settings).resolve(INBOX).name
        published = [
            e
            for e in await read_topic(system.settings, codec, topic)
            if isinstance(e.payload, ConversationRead | ConversationFlagsSet) and e.user_id == bob
        ]
        assert published == []
    finally:
        await b.close()
