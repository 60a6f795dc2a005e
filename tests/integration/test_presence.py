"""Presence for clients (issue 16, item 6) through the real edges, broker, worker and store:
alice watches bob (they share a conversation) on edge A while bob comes and goes on edge B;
bob's last socket closing sends offline with his last seen; bob hiding his last seen sends
offline without it (and the query agrees); someone who does not talk to bob learns nothing of
him; bad input is refused with 5 and publishes nothing. One worker and two edges serve the
module (the ``system`` fixture of test_edge_e2e); each test has its own users.

Absence is shown by order, not by waiting: a socket's answers follow the pushes queued before
them, so once a watcher on the same edge got bob's push, a request answered on the stranger's
socket after it would come after any push of bob's to that socket.
"""

from __future__ import annotations

import time
import uuid

import pytest

from chat_events.client import ChatClient, ChatError, HttpApi
from chat_events.client.presence import Presence
from chat_events.codec import build_codec
from chat_events.events.presence_events import PresenceSettingsSet
from chat_events.topics import USER_EVENTS, TopicCatalog
from tests.integration.test_edge_e2e import System, system, uid
from tests.integration.worker_harness import read_topic

__all__ = ["system"]  # the module's worker and edges (a fixture)


async def api(system: System, user: str) -> HttpApi:
    return HttpApi(system.a.http, token=await system.token(user))


async def talk(client: ChatClient, target_type: str, target_id: str) -> None:
    """Send one message and wait for its own copy: the sender's conversation row is stored."""
    text = f"hello {uuid.uuid4().hex[:6]}"
    await client.send(target_type, target_id, text)  # type: ignore[arg-type]
    while (await client.receive(timeout=30)).message["content"] != text:
        pass


async def next_presence(client: ChatClient, user_id: str, status: str) -> Presence:
    """The next push about ``user_id`` with ``status`` (earlier ones of the user are skipped:
    a change of the setting re-sends the presence as it is)."""
    while True:
        presence = await client.presence.next(timeout_s=30)
        if presence.user_id == user_id and presence.status == status:
            return presence


async def test_a_peer_sees_bob_come_online_and_go_offline_with_his_last_seen(system: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    a = await system.client(system.a, alice)
    bobs: list[ChatClient] = []
    try:
        await talk(a, "user", bob)
        answer = await a.subscribe_presence([bob])
        assert answer[bob] == Presence(bob, "offline", None)  # never seen
        started_ms = int(time.time() * 1000)
        bobs.append(await system.client(system.b, bob))
        assert (await next_presence(a, bob, "online")).last_seen_ms is None
        bobs.append(await system.client(system.b, bob, device="d2"))
        await bobs[0].close()  # one socket left: still online
        async with await api(system, alice) as http:
            assert await http.presence([bob]) == [{"user_id": bob, "status": "online", "last_seen_ms": None}]
        await bobs[1].close()
        offline = await next_presence(a, bob, "offline")
        assert offline.last_seen_ms is not None and started_ms <= offline.last_seen_ms <= int(time.time() * 1000)
        assert a.presence.current[bob] == offline
        async with await api(system, alice) as http:
            assert await http.presence([bob, alice]) == [
                {"user_id": bob, "status": "offline", "last_seen_ms": offline.last_seen_ms},
                {"user_id": alice, "status": "online", "last_seen_ms": None},  # yourself
            ]
    finally:
        await a.close()
        for client in bobs:
            await client.close()


async def test_bob_hiding_his_last_seen_hides_it_from_pushes_and_queries(system: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    async with await api(system, alice) as http:
        group = await http.create_group(f"g-{uuid.uuid4().hex[:6]}", [bob])
    a = await system.client(system.a, alice)
    try:
        await talk(a, "group", group.group_id)  # a group member, no 1:1
        assert (await a.subscribe_presence([bob]))[bob].status == "offline"
        b = await system.client(system.b, bob)
        try:
            await next_presence(a, bob, "online")
            await b.set_settings(show_last_seen=False)
            await next_presence(a, bob, "online")  # the setting's change is sent as bob's presence
        finally:
            await b.close()
        assert await next_presence(a, bob, "offline") == Presence(bob, "offline", None)
        async with await api(system, alice) as http:
            assert await http.presence([bob]) == [{"user_id": bob, "status": "offline", "last_seen_ms": None}]
        async with await api(system, bob) as http:
            assert await http.settings() == {"read_receipts": True, "show_last_seen": False}
            await http.set_settings(show_last_seen=True)  # shown again: alice is told, offline
        shown = await next_presence(a, bob, "offline")
        assert shown.last_seen_ms is not None
        async with await api(system, alice) as http:
            assert await http.presence([bob]) == [
                {"user_id": bob, "status": "offline", "last_seen_ms": shown.last_seen_ms}
            ]
    finally:
        await a.close()


async def test_someone_who_does_not_talk_to_bob_learns_nothing_of_him(system: System) -> None:
    alice, bob, eve = uid("alice"), uid("bob"), uid("eve")
    a = await system.client(system.a, alice)
    e = await system.client(system.a, eve)  # the same edge as alice: her push shows bob's was handled
    try:
        await talk(a, "user", bob)
        await a.subscribe_presence([bob])
        ghost = uid("ghost")  # no such user: the same answer as bob
        answer = await e.subscribe_presence([bob, ghost])
        assert answer == {bob: Presence(bob, "unknown", None), ghost: Presence(ghost, "unknown", None)}
        b = await system.client(system.b, bob)
        await next_presence(a, bob, "online")
        await b.close()
        await next_presence(a, bob, "offline")
        again = await e.subscribe_presence([bob])  # answered after any push of bob's to eve's socket
        assert again[bob].status == "unknown"
        assert len(e.presence.updates) == 0
        async with await api(system, eve) as http:
            assert await http.presence([bob, ghost]) == [
                {"user_id": bob, "status": "unknown", "last_seen_ms": None},
                {"user_id": ghost, "status": "unknown", "last_seen_ms": None},
            ]
    finally:
        await a.close()
        await e.close()


async def test_a_block_either_way_hides_presence_also_from_a_subscription_made_before_it(system: System) -> None:
    alice, bob, dave = uid("alice"), uid("bob"), uid("dave")
    a = await system.client(system.a, alice)
    d = await system.client(system.a, dave)  # another of bob's peers on alice's edge: the marker
    b = await system.client(system.b, bob)
    try:
        await talk(a, "user", bob)
        await talk(d, "user", bob)
        assert (await a.subscribe_presence([bob]))[bob].status == "online"
        await d.subscribe_presence([bob])
        await b.block(alice)  # after alice subscribed: bob's next change is not pushed to her
        await b.close()
        await next_presence(d, bob, "offline")
        assert (await a.subscribe_presence([bob]))[bob].status == "unknown"  # answered after any push
        assert len(a.presence.updates) == 0
        async with await api(system, alice) as http:
            assert await http.presence([bob]) == [{"user_id": bob, "status": "unknown", "last_seen_ms": None}]
        async with await api(system, bob) as http:  # the blocker does not see alice either
            assert await http.presence([alice]) == [{"user_id": alice, "status": "unknown", "last_seen_ms": None}]
    finally:
        for client in (a, d, b):
            await client.close()


async def test_bad_presence_input_is_refused_with_5_and_publishes_nothing(system: System) -> None:
    alice = uid("alice")
    a = await system.client(system.a, alice)
    try:
        too_many = [f"u{i}" for i in range(501)]
        for ids, field in ((too_many, "user_ids"), ([alice, "bad id"], "user_ids[1]"), ([], "user_ids")):
            with pytest.raises(ChatError) as info:
                await a.subscribe_presence(ids)
            assert (info.value.code, info.value.data.get("field")) == (5, field)
        answer = await a.subscribe_presence([f"u{i}" for i in range(500)])  # at the bound: answered
        assert {p.status for p in answer.values()} == {"unknown"}
        with pytest.raises(ChatError) as info:
            await a.set_settings(show_last_seen="no")  # type: ignore[arg-type]
        assert (info.value.code, info.value.data.get("field")) == (5, "show_last_seen")
        async with await api(system, alice) as http:
            for call in (
                http.presence(too_many),
                http.presence([alice, "a:b"]),
                http.set_settings(),
                http._call("PUT", "/v1/settings", json={"show_last_seen": "no"}),
            ):
                with pytest.raises(ChatError) as info:
                    await call
                assert (info.value.code, info.value.data.get("http_status")) == (5, 422)
            assert (await http.settings())["show_last_seen"] is True
        codec = build_codec(system.settings)
        topic = TopicCatalog(system.settings).resolve(USER_EVENTS).name
        events = await read_topic(system.settings, codec, topic)
        assert not [x for x in events if isinstance(x.payload, PresenceSettingsSet) and x.user_id == alice]
    finally:
        await a.close()
