"""Paths that were tested only against the client's fake edge, now through the real edges,
worker, broker and store (issue 16, item 7): typing, read-fan-out rooms (``subscribe_room``),
a device's acks as its resume point through the client, HTTP history pages, and adding,
removing and leaving group members (with the edges' member caches), each with another
member's devices watching.

The raw ``ack``/``sync`` frames of stored progress and seq ranges are covered in
test_sync_range_and_progress.py and the conversation list in test_conversation_list.py; only
what those do not reach is here. One worker and two edges serve the module (the ``system``
fixture of test_edge_e2e.py); each test has its own users.

Absence ("nothing reached X") is shown without sleeping: X's *next* event is a marker sent
after the one that must not arrive, on a path that would have delivered that one first.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect

from chat_events.client import ChatClient, ChatError, HttpApi
from chat_events.client.models import Delivery, RoomMessage, TypingEvent
from chat_events.events.conversations import direct_conversation_id
from tests.integration.test_conversation_list import next_change, receipts_until
from tests.integration.test_edge_e2e import System, receive_n, system, uid
from tests.integration.worker_harness import wait_until

__all__ = ["system"]  # the module's worker and edges (a fixture)


async def api(system: System, user: str, edge: str = "a") -> HttpApi:
    return HttpApi((system.a if edge == "a" else system.b).http, token=await system.token(user))


async def online(system: System, user: str, *devices: str) -> None:
    """Wait until the workers have the sessions of ``devices`` (typing is relayed to stored sessions)."""

    async def check() -> bool:
        sessions = (await system.store.sessions_of([user])).get(user, ())
        return set(devices) <= {s.device_id for s in sessions}

    await wait_until(check, timeout=30, what=f"{user}'s devices {devices} online")


async def typing_events(client: ChatClient, n: int, timeout: float = 20.0) -> list[TypingEvent]:  # noqa: ASYNC109
    """The next ``n`` typing pushes of ``client``."""
    events = client.typing_events()
    async with asyncio.timeout(timeout):
        return [await anext(events) for _ in range(n)]


async def room_messages(client: ChatClient, n: int, timeout: float = 20.0) -> list[RoomMessage]:  # noqa: ASYNC109
    """The next ``n`` room pushes of ``client``."""
    messages = client.room_messages()
    async with asyncio.timeout(timeout):
        return [await anext(messages) for _ in range(n)]


async def stored(system: System, conversation_id: str, n: int) -> None:
    async def check() -> bool:
        page = await system.store.conversation_messages(conversation_id, after_seq=n - 1, limit=1)
        return bool(page.items)

    await wait_until(check, timeout=60, what=f"{n} messages of {conversation_id} stored")


async def receive_users(client: ChatClient, n: int, timeout: float = 30.0) -> list[Delivery]:  # noqa: ASYNC109
    """The next ``n`` deliveries of users' messages, skipping the groups' system messages
    ("alice added dave": streams/group_system.py), which arrive in between."""
    out: list[Delivery] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            delivery = await client.receive()
            if delivery.message.get("kind", "message") != "system":
                out.append(delivery)
    return out


def users_contents(messages: Any) -> list[str]:
    return [m["content"] for m in messages if m.get("kind", "message") != "system"]


async def closing(*clients: ChatClient) -> None:
    for client in clients:
        await client.close()


# --- typing ---------------------------------------------------------------------------------


def _states(events: list[TypingEvent]) -> list[tuple[str, str, str, str, str]]:
    return [(e.conversation_id, e.user_id, e.target_type, e.target_id, e.state) for e in events]


async def test_typing_in_a_1to1_reaches_the_peers_devices_on_both_edges_not_the_typists_own(system: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    conv = direct_conversation_id(alice, bob)
    a_phone, a_laptop = await system.client(system.a, alice, "phone"), await system.client(system.b, alice, "laptop")
    b_phone, b_laptop = await system.client(system.b, bob, "phone"), await system.client(system.a, bob, "laptop")
    try:
        await online(system, alice, "phone", "laptop")
        await online(system, bob, "phone", "laptop")
        await a_phone.typing("user", bob, "start")
        await a_phone.typing("user", bob, "stop")
        for device in (b_phone, b_laptop):
            assert _states(await typing_events(device, 2)) == [
                (conv, alice, "user", bob, "start"),
                (conv, alice, "user", bob, "stop"),
            ]
        # bob's typing is relayed after alice's on each edge's delivery topic: had alice's own
        # devices been sent hers, they would have had it first
        await b_phone.typing("user", alice, "start")
        for device in (a_phone, a_laptop):
            assert _states(await typing_events(device, 1)) == [(conv, bob, "user", alice, "start")]
    finally:
        await closing(a_phone, a_laptop, b_phone, b_laptop)


async def test_typing_in_a_group_reaches_the_other_members_and_an_outsider_is_refused_with_8(system: System) -> None:
    alice, bob, carol, eve = uid("alice"), uid("bob"), uid("carol"), uid("eve")
    async with await api(system, alice) as http:
        group = (await http.create_group("team", [bob, carol])).group_id
    a_phone, a_laptop = await system.client(system.a, alice, "phone"), await system.client(system.b, alice, "laptop")
    b_phone, b_laptop = await system.client(system.b, bob, "phone"), await system.client(system.a, bob, "laptop")
    c = await system.client(system.a, carol)
    try:
        for user, devices in ((alice, ("phone", "laptop")), (bob, ("phone", "laptop")), (carol, ("d1",))):
            await online(system, user, *devices)
        await a_phone.typing("group", group, "start")
        await a_phone.typing("group", group, "stop")
        for device in (b_phone, b_laptop, c):
            assert _states(await typing_events(device, 2)) == [
                (group, alice, "group", group, "start"),
                (group, alice, "group", group, "stop"),
            ]

        token = await system.token(eve)  # not a member: refused, relayed to nobody
        async with connect(system.a.ws, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            await ws.recv()  # sign_in
            data = {"target_type": "group", "target_id": group, "state": "start"}
            await ws.send(json.dumps({"type": "typing", "request_id": 7, "data": data}))
            refused = json.loads(await ws.recv())
        assert (refused["type"], refused["request_id"], refused["code"]) == ("typing", 7, 8)

        await c.typing("group", group, "start")  # the marker: after alice's typing on every edge
        for device in (a_phone, a_laptop):
            assert _states(await typing_events(device, 1)) == [(group, carol, "group", group, "start")]
        assert _states(await typing_events(b_phone, 1)) == [(group, carol, "group", group, "start")]
    finally:
        await closing(a_phone, a_laptop, b_phone, b_laptop, c)


# --- rooms (read fan-out) -------------------------------------------------------------------


async def test_a_room_answers_subscribe_with_its_page_pushes_in_seq_order_and_catches_up_after_a_reconnect(
    system: System,
) -> None:
    alice, bob, eve = uid("alice"), uid("bob"), uid("eve")
    crowd = [uid(f"r{i:02d}") for i in range(60)]  # 62 members: above fanout_write_max_members (60)
    async with await api(system, alice) as http:
        room = (await http.create_group("town hall", [bob, *crowd])).group_id
        small = (await http.create_group("small", [bob])).group_id
    a = await system.client(system.a, alice)
    b_phone, b_laptop = await system.client(system.b, bob, "phone"), await system.client(system.a, bob, "laptop")
    try:
        # seq 1 of each group is its groupCreated system message (streams/group_system.py): rN is seq N + 1
        for i in range(5):
            await a.send("group", room, f"r{i + 1}")
        await stored(system, room, 6)

        created = await b_phone.subscribe_room(room, 0, limit=1)
        assert [m["kind"] for m in created.messages] == ["system"] and created.has_more
        first = await b_phone.subscribe_room(room, 1, limit=3)
        assert [m["seq"] for m in first.messages] == [2, 3, 4] and first.has_more and first.last_seq == 4
        assert [m["content"] for m in first.messages] == ["r1", "r2", "r3"]
        assert all(m["sender_id"] == alice and m["conversation_id"] == room for m in first.messages)
        rest = await b_phone.subscribe_room(room, first.last_seq)  # paging on: subscribe again from there
        assert [m["seq"] for m in rest.messages] == [5, 6] and not rest.has_more and rest.last_seq == 6
        laptop_page = await b_laptop.subscribe_room(room, 4)
        assert [m["seq"] for m in laptop_page.messages] == [5, 6]

        for i in range(5, 15):
            await a.send("group", room, f"r{i + 1}")
        for device in (b_phone, b_laptop):  # live pushes, in seq order, once
            got = await room_messages(device, 10)
            assert [m.seq for m in got] == list(range(7, 17))
            assert [m.message["content"] for m in got] == [f"r{i}" for i in range(6, 16)]
            assert {m.room_id for m in got} == {room}
        await a.send("user", bob, "1:1")  # fanned out after the room's messages
        [first_entry] = await receive_users(b_phone, 1)
        assert first_entry.content == "1:1"
        inbox = await system.store.inbox_after(bob, 0)  # a room is not delivered via the inbox
        assert {e.conversation_id for e in inbox.items} == {small, first_entry.conversation_id}

        # the phone goes away; what was said meanwhile comes with the next subscribe, by seq
        await b_phone.close()
        for i in range(15, 20):
            await a.send("group", room, f"r{i + 1}")
        await stored(system, room, 21)
        got = await room_messages(b_laptop, 5)
        assert [m.seq for m in got] == [17, 18, 19, 20, 21]
        async with await system.client(system.b, bob, "phone") as again:
            page = await again.subscribe_room(room, 16)
            assert [m["seq"] for m in page.messages] == [17, 18, 19, 20, 21] and not page.has_more
            await a.send("group", room, "r21")
            assert [m.seq for m in await room_messages(again, 1)] == [22]
            # the client's own reconnect subscribes again from the highest seq it saw
            await again.reconnect()  # its resubscribe is answered before the catch-up sync it awaits
            await a.send("group", room, "r22")
            assert [(m.seq, m.message["content"]) for m in await room_messages(again, 1)] == [(23, "r22")]
        assert [m.seq for m in await room_messages(b_laptop, 2)] == [22, 23]

        async with await system.client(system.b, eve) as outsider:
            with pytest.raises(ChatError) as refused:
                await outsider.subscribe_room(room)
            assert refused.value.code == 8
            with pytest.raises(ChatError) as refused:
                await b_laptop.subscribe_room(small)  # a member, but the group is not a room
            assert refused.value.code == 5
    finally:
        await closing(a, b_phone, b_laptop)


# --- acks -----------------------------------------------------------------------------------


async def test_what_a_device_received_is_where_its_sync_without_a_seq_resumes(system: System) -> None:
    """The client acks what the application received (not what was pushed to it); the edge
    stores it through deviceAcked; a new socket of that device signs in with ``acked_seq`` and
    ``sync(None)`` goes on from there. The user's other device keeps its own place."""
    alice, bob = uid("alice"), uid("bob")
    a = await system.client(system.a, alice)
    phone = ChatClient(system.a.http, token=await system.token(bob), device_id="phone", last_seq=None)
    laptop = await system.client(system.b, bob, "laptop")
    try:
        await phone.connect()
        assert phone.sign_in_info.acked_seq == 0
        for i in range(6):
            await a.send("user", bob, f"m{i + 1}")
        assert [d.user_seq for d in await receive_n(laptop, 6)] == [1, 2, 3, 4, 5, 6]
        assert [d.content for d in await receive_n(phone, 4)] == ["m1", "m2", "m3", "m4"]
        await phone.close()  # 5 and 6 were pushed to it, never received: not acked

        async def stored_progress() -> bool:
            found = (await system.store.device_progress([(bob, "phone")])).get((bob, "phone"))
            return found is not None and found.acked_seq == 4

        await wait_until(stored_progress, timeout=30, what="the phone's stored progress at 4")

        async def laptop_progress() -> bool:  # the laptop, still signed in, acked everything
            found = (await system.store.device_progress([(bob, "laptop")])).get((bob, "laptop"))
            return found is not None and found.acked_seq == 6

        await wait_until(laptop_progress, timeout=30, what="the laptop's stored progress at 6")
        async with ChatClient(system.b.http, token=await system.token(bob), device_id="phone", last_seq=None) as again:
            assert again.sign_in_info.acked_seq == 4
            page = await again.sync(None, limit=10)
            assert page.after_seq == 4 and [d.user_seq for d in page.messages] == [5, 6] and not page.has_more
            assert [d.content for d in await receive_n(again, 2)] == ["m5", "m6"]
    finally:
        await closing(a, phone, laptop)


# --- history --------------------------------------------------------------------------------


async def test_history_pages_back_and_forth_over_120_messages_and_an_outsider_gets_8(system: System) -> None:
    alice, bob, carol, dave = uid("alice"), uid("bob"), uid("carol"), uid("dave")
    async with await api(system, alice) as http:
        group = (await http.create_group("long", [bob, carol])).group_id
    a, b = await system.client(system.a, alice), await system.client(system.b, bob)
    c = await system.client(system.b, carol)
    try:
        # seq 1 is the groupCreated system message; one after the other, alternating edges: seq i + 2 is message i
        for i in range(120):
            await (a if i % 2 == 0 else b).send("group", group, f"h{i + 1}")
        assert [d.message["seq"] for d in await receive_n(c, 121)] == list(range(1, 122))  # carol watches
        await stored(system, group, 121)

        async with await api(system, carol, "b") as http:

            def seqs(page: Any) -> list[int]:
                return [m["seq"] for m in page.messages]

            newest = await http.history(group)  # newest first
            assert seqs(newest) == list(range(121, 71, -1)) and newest.has_more
            middle = await http.history(group, before_seq=72)
            assert seqs(middle) == list(range(71, 21, -1)) and middle.has_more
            oldest = await http.history(group, before_seq=22)
            assert seqs(oldest) == list(range(21, 0, -1)) and not oldest.has_more
            assert not (await http.history(group, before_seq=51)).has_more  # exactly 50 before 51

            pages, after = [], 0
            while True:
                page = await http.history(group, after_seq=after, limit=50)
                pages.append(seqs(page))
                if not page.has_more:
                    break
                after = page.messages[-1]["seq"]
            assert pages == [list(range(1, 51)), list(range(51, 101)), list(range(101, 122))]
            exact = await http.history(group, after_seq=71, limit=50)  # exactly 50 after 71
            assert seqs(exact) == list(range(72, 122)) and not exact.has_more
            assert (await http.history(group, after_seq=121)).messages == ()

            everything = await http.history(group, after_seq=1, limit=200)
            assert [(m["seq"], m["content"], m["sender_id"]) for m in everything.messages] == [
                (i + 2, f"h{i + 1}", alice if i % 2 == 0 else bob) for i in range(120)
            ]
            assert {m["conversation_id"] for m in everything.messages} == {group}

        for edge in ("a", "b"):  # an outsider: 403, code 8, on either edge, for every page
            async with await api(system, dave, edge) as http:
                for which in ({}, {"after_seq": 0}, {"before_seq": 5}):
                    with pytest.raises(ChatError) as refused:
                        await http.history(group, **which)
                    assert (refused.value.code, refused.value.data["http_status"]) == (8, 403)
    finally:
        await closing(a, b, c)


# --- adding, removing and leaving members ---------------------------------------------------


async def test_an_added_member_gets_the_next_message_on_any_edge_and_reads_history_at_once(system: System) -> None:
    alice, bob, dave = uid("alice"), uid("bob"), uid("dave")
    async with await api(system, alice) as http:
        group = (await http.create_group("team", [bob])).group_id
    a, b = await system.client(system.a, alice), await system.client(system.b, bob)
    d_phone, d_laptop = await system.client(system.b, dave, "phone"), await system.client(system.a, dave, "laptop")
    try:
        await b.send("group", group, "before dave")  # edge b now holds the group's members (without dave)
        await receive_users(a, 1)
        async with await api(system, dave, "b") as http:  # and so does its history route
            with pytest.raises(ChatError) as refused:
                await http.history(group)
            assert refused.value.code == 8

        async with await api(system, alice) as http:
            added = await http.add_member(group, dave)  # through edge a
            assert added == {"group_id": group, "user_id": dave, "member": True}
        async with await api(system, dave, "b") as http:  # on edge b at once: not refused on a stale list
            assert users_contents((await http.history(group)).messages) == ["before dave"]
        await a.send("group", group, "welcome dave")
        # the group's seqs: 1 groupCreated, 2 "before dave", 3 groupMemberJoined (dave's first entry), 4, 5
        for device in (d_phone, d_laptop):
            [got] = await receive_users(device, 1)
            assert (got.user_seq, got.message["seq"], got.content) == (2, 4, "welcome dave")
        await d_phone.send("group", group, "hi all")  # dave posts through edge b at once
        for member, pending in ((a, 2), (b, 3)):  # with their own copies
            last = (await receive_users(member, pending))[-1]
            assert last.content == "hi all" and last.message["seq"] == 5

        async with await api(system, dave, "b") as http:
            page = await http.history(group, after_seq=3)
            assert [(m["seq"], m["content"]) for m in page.messages] == [(4, "welcome dave"), (5, "hi all")]

            async def listed() -> bool:
                row = next((r for r in await http.conversations() if r["conversation_id"] == group), None)
                return row is not None and (row["last_seq"], row["name"]) == (5, "team")

            await wait_until(listed, timeout=30, what="the group in dave's conversation list")
    finally:
        await closing(a, b, d_phone, d_laptop)


async def test_a_removed_member_and_one_who_left_get_nothing_more_and_are_refused_with_8(system: System) -> None:
    alice, bob, carol, dave = uid("alice"), uid("bob"), uid("carol"), uid("dave")
    async with await api(system, alice) as http:
        group = (await http.create_group("team", [bob, carol, dave])).group_id
    a, b = await system.client(system.a, alice), await system.client(system.b, bob)
    c_phone, c_laptop = await system.client(system.a, carol, "phone"), await system.client(system.b, carol, "laptop")
    d = await system.client(system.b, dave)
    everyone = (a, b, c_phone, c_laptop, d)
    try:
        for sender in (c_phone, d):  # both edges hold the group's member list now
            await sender.send("group", group, f"hello from {sender.user_id}")
        for client in everyone:
            await receive_users(client, 2)

        async with await api(system, alice) as http:
            assert (await http.remove_member(group, carol))["member"] is False  # the owner removes carol
        async with await api(system, dave, "b") as http:
            assert (await http.remove_member(group, dave))["member"] is False  # dave leaves
            with pytest.raises(ChatError) as refused:
                await http.history(group)
            assert (refused.value.code, refused.value.data["http_status"]) == (8, 403)

        await a.send("group", group, "after they went")
        [got] = await receive_users(b, 1)
        assert got.content == "after they went"
        # the markers: a 1:1 message each, sent after the group message was fanned out
        for gone, devices in ((carol, (c_phone, c_laptop)), (dave, (d,))):
            await a.send("user", gone, f"only for {gone}")
            for device in devices:
                [next_one] = await receive_users(device, 1)
                assert next_one.content == f"only for {gone}"
        await receive_users(a, 3)  # alice's own copies of the three

        # refused with 8 on either edge: each edge that made a change forgot its cached member
        # list, and a refusal is never made on a stale one
        for client in (c_phone, c_laptop, d):
            with pytest.raises(ChatError) as refused:
                await client.send("group", group, "still here?")
            assert refused.value.code == 8
        await b.send("group", group, "marker")  # the next message of the group, for those still in it
        for member in (a, b):
            assert (await receive_users(member, 1))[0].content == "marker"
        async with await api(system, bob) as http:
            contents = users_contents((await http.history(group, after_seq=0)).messages)
        assert "still here?" not in contents and contents[-2:] == ["after they went", "marker"]
    finally:
        await closing(*everyone)


# --- the conversation list's HTTP routes ----------------------------------------------------


async def test_the_conversation_routes_over_http_change_the_list_and_every_device_hears_of_it(system: System) -> None:
    """The list with data, changed through HTTP (the frames' twins, which test_conversation_list.py
    drives over the socket): read, pin, remove, read-all, the receipts setting."""
    alice, bob, carol = uid("alice"), uid("bob"), uid("carol")
    with_alice, with_carol = direct_conversation_id(alice, bob), direct_conversation_id(bob, carol)
    a, c = await system.client(system.a, alice), await system.client(system.b, carol)
    phone, laptop = await system.client(system.a, bob, "phone"), await system.client(system.b, bob, "laptop")
    try:
        for i in range(3):
            await a.send("user", bob, f"a{i + 1}")
        await c.send("user", bob, "c1")
        for device in (phone, laptop):
            await receive_n(device, 4)
        async with await api(system, bob, "b") as http:
            assert (await http.unread())["conversations"] == {with_alice: 3, with_carol: 1}
            assert await http.read(with_alice, 2) == 2
            for device in (phone, laptop):
                row = await next_change(device, with_alice)
                assert (row["read_seq"], row["unread"], row["last_seq"]) == (2, 1, 3)
            assert {"conversation_id": with_alice, "user_id": bob, "kind": "read", "seq": 2} in await receipts_until(
                a, {"read": 2}
            )

            await http.set_conversation(with_carol, pinned=True)
            for device in (phone, laptop):
                assert (await next_change(device, with_carol))["pinned"] is True
            rows = await http.conversations()
            assert [r["conversation_id"] for r in rows] == [with_carol, with_alice]
            assert (rows[0]["peer_id"], rows[0]["last_seq"], rows[0]["unread"]) == (carol, 1, 1)

            await http.remove_conversations([with_carol])
            for device in (phone, laptop):
                assert (await next_change(device, with_carol))["hidden"] is True
            assert [r["conversation_id"] for r in await http.conversations()] == [with_alice]

            await http.read_all()
            for device in (phone, laptop):
                assert (await next_change(device, with_alice))["unread"] == 0
            assert (await http.unread())["total"] == 0

            await http.set_settings(read_receipts=False)

            async def receipts_off() -> bool:
                return (await http.settings())["read_receipts"] is False

            await wait_until(receipts_off, timeout=30, what="bob's read receipts off")

            for call, code, status in (
                (http.read(direct_conversation_id(alice, carol), 1), 8, 403),  # not bob's
                (http.set_conversation(with_alice), 5, 422),  # no flag
            ):
                with pytest.raises(ChatError) as refused:
                    await call
                assert (refused.value.code, refused.value.data["http_status"]) == (code, status)
    finally:
        await closing(a, c, phone, laptop)
