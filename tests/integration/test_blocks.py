"""Blocks from clients (issue 16, item 5) through the real edges, broker, worker and store:
alice blocks bob, then bob's direct sends are refused with 18 and never reach Kafka, his group
messages reach carol but not alice (pushes, sync, history; room pushes and room pages for a
read-fan-out group), his typing does not reach alice, history keeps what he sent before the
block, and an unblock lets new messages through again. One worker and two edges serve the
module (the ``system`` fixture of test_edge_e2e); each test has its own users.

Absence is shown by order, not by waiting: a message (or typing) of carol that follows bob's in
the same conversation (same partition, and carol saw bob's first) reaches alice as the next one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Iterable
from typing import Any, cast

import pytest

from chat_events.client import ChatClient, ChatError, HttpApi
from chat_events.client.models import RoomMessage, TypingEvent
from chat_events.codec import build_codec
from chat_events.events.conversations import direct_conversation_id
from chat_events.events.types import PersonalChatSent, UserBlocked, UserTyping, UserUnblocked
from chat_events.topics import PERSONAL_CHAT, USER_EVENTS, TopicCatalog
from tests.integration.test_edge_e2e import System, system, uid
from tests.integration.worker_harness import read_topic

__all__ = ["system"]  # the module's worker and edges (a fixture)


async def api(system: System, user: str) -> HttpApi:
    return HttpApi(system.a.http, token=await system.token(user))


def users_messages(messages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages users sent (not system messages other features may add to a group)."""
    return [m for m in messages if m.get("kind", "message") == "message"]


def contents(messages: Iterable[dict[str, Any]]) -> list[str]:
    return [str(m["content"]) for m in users_messages(messages)]


async def next_message(client: ChatClient, timeout: float = 30.0) -> dict[str, Any]:  # noqa: ASYNC109
    """The next message another user sent that is delivered to ``client`` (its inbox pushes;
    the sender's own copies are skipped)."""
    while True:
        message = (await client.receive(timeout=timeout)).message
        if users_messages([message]) and message["sender_id"] != client.user_id:
            return message


async def next_content(client: ChatClient) -> str:
    return str((await next_message(client))["content"])


async def next_typing(client: ChatClient, timeout: float = 30.0) -> TypingEvent:  # noqa: ASYNC109
    events = cast(AsyncGenerator[TypingEvent, None], client.typing_events())
    try:
        async with asyncio.timeout(timeout):
            return await anext(events)
    finally:
        await events.aclose()


async def next_room_message(client: ChatClient, timeout: float = 30.0) -> RoomMessage:  # noqa: ASYNC109
    messages = cast(AsyncGenerator[RoomMessage, None], client.room_messages())
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await anext(messages)
                if users_messages([message.message]):
                    return message
    finally:
        await messages.aclose()


async def group_of(system: System, owner: str, members: list[str]) -> str:
    async with await api(system, owner) as http:
        group = await http.create_group(f"g-{uuid.uuid4().hex[:6]}", members)
    assert not group.pending
    return group.group_id


async def test_a_blocked_users_direct_sends_are_refused_and_never_reach_kafka(system: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    a = await system.client(system.a, alice)
    b = await system.client(system.b, bob)
    try:
        await b.send("user", alice, "before")
        assert await next_content(a) == "before"
        answer = await a.block(bob)
        assert answer["user_id"] == bob and answer["blocked"] is True and "status" not in answer
        refused_id = f"refused-{uuid.uuid4().hex[:8]}"
        with pytest.raises(ChatError) as info:
            await b.send("user", alice, "after", client_msg_id=refused_id)
        assert info.value.code == 18
        async with await api(system, alice) as http:
            assert await http.blocks() == [{"user_id": bob, "since_ms": answer["since_ms"]}]
            history = await http.history(direct_conversation_id(alice, bob))
        assert contents(history.messages) == ["before"]
        await a.send("user", bob, "the blocker may still write")  # a block is one way
        assert await next_content(b) == "the blocker may still write"

        codec = build_codec(system.settings)
        topic = TopicCatalog(system.settings).resolve(PERSONAL_CHAT).name
        sent = [e.payload for e in await read_topic(system.settings, codec, topic) if e.user_id == bob]
        assert [p.payload for p in sent if isinstance(p, PersonalChatSent)] == ["before"]

        assert (await a.unblock(bob))["blocked"] is False
        await b.send("user", alice, "after the unblock")
        assert await next_content(a) == "after the unblock"
        async with await api(system, alice) as http:
            assert await http.blocks() == []
    finally:
        await a.close()
        await b.close()


async def test_a_blocked_users_group_messages_reach_the_others_but_not_the_blocker(system: System) -> None:
    alice, bob, carol = uid("alice"), uid("bob"), uid("carol")
    group = await group_of(system, carol, [alice, bob])
    a = await system.client(system.a, alice)
    b = await system.client(system.b, bob)
    c = await system.client(system.a, carol)
    try:
        await b.send("group", group, "bob before")
        assert await next_content(a) == "bob before"
        before_seq = int((await next_message(c))["seq"])
        async with await api(system, alice) as http:  # over HTTP this time
            blocked = await http.block(bob)
        assert blocked["blocked"] is True and "status" not in blocked

        await b.send("group", group, "bob during")
        assert await next_content(c) == "bob during"  # the other members still get it
        await c.send("group", group, "carol after bob")
        assert await next_content(a) == "carol after bob"  # bob's came first: it was left out

        sync = await a.sync(0)
        assert contents(d.message for d in sync.messages) == ["bob before", "carol after bob"]
        after_seq = before_seq + 2
        async with await api(system, alice) as http:
            newest = await http.history(group)
            ascending = await http.history(group, after_seq=before_seq - 1)
            ranged = await http.history_range(group, before_seq, after_seq)
            hidden_only = await http.history(group, after_seq=before_seq, limit=1)
        assert contents(newest.messages) == ["carol after bob", "bob before"]
        assert contents(ascending.messages) == ["bob before", "carol after bob"]
        assert ascending.page_end_seq == after_seq
        assert contents(ranged.messages) == ["bob before", "carol after bob"]
        assert (hidden_only.messages, hidden_only.has_more, hidden_only.page_end_seq) == ((), True, before_seq + 1)
        async with await api(system, carol) as http:  # carol blocks nobody: she sees all three
            assert contents((await http.history(group, after_seq=before_seq - 1)).messages) == [
                "bob before",
                "bob during",
                "carol after bob",
            ]

        await a.unblock(bob)
        await b.send("group", group, "bob after the unblock")
        assert await next_content(a) == "bob after the unblock"
        assert await next_content(c) == "bob after the unblock"
    finally:
        for client in (a, b, c):
            await client.close()


async def test_a_blocked_users_typing_does_not_reach_the_blocker(system: System) -> None:
    alice, bob, carol = uid("alice"), uid("bob"), uid("carol")
    group = await group_of(system, carol, [alice, bob])
    a = await system.client(system.a, alice)
    b = await system.client(system.b, bob)
    c = await system.client(system.a, carol)  # on alice's edge: one typing event for both
    try:
        await b.typing("group", group)
        assert (await next_typing(a)).user_id == bob  # typing reaches alice before the block
        assert (await next_typing(c)).user_id == bob
        await a.block(bob)

        await b.typing("user", alice)
        await b.typing("group", group)
        assert (await next_typing(c)).user_id == bob  # carol still sees bob typing
        await c.typing("group", group)
        event = await next_typing(a)  # same edge topic and key as bob's, after it: his was left out
        assert (event.user_id, event.conversation_id) == (carol, group)

        codec = build_codec(system.settings)
        edge_topic = TopicCatalog(system.settings).edge_topic(a.edge_id).name
        relayed = [
            e
            for e in await read_topic(system.settings, codec, edge_topic)
            if isinstance(e.payload, UserTyping) and e.user_id == bob and alice in e.payload.recipient_ids
        ]
        assert len(relayed) == 1  # the one before the block; none of the 1:1 nor the group typing after
    finally:
        for client in (a, b, c):
            await client.close()


async def test_a_blocked_users_room_messages_are_not_pushed_to_the_blocker(system: System) -> None:
    alice, bob, carol = uid("alice"), uid("bob"), uid("carol")
    extras = [f"{uid('m')}" for _ in range(system.settings.fanout_write_max_members)]
    room = await group_of(system, carol, [alice, bob, *extras])  # above the write fan-out bound: a room
    a = await system.client(system.a, alice)
    b = await system.client(system.b, bob)
    c = await system.client(system.a, carol)
    try:
        await a.subscribe_room(room)
        await c.subscribe_room(room)
        await b.send("group", room, "bob before")
        assert (await next_room_message(a)).message["content"] == "bob before"
        assert (await next_room_message(c)).message["content"] == "bob before"
        await a.block(bob)

        await b.send("group", room, "bob during")
        assert (await next_room_message(c)).message["content"] == "bob during"
        await c.send("group", room, "carol after bob")
        carols = await next_room_message(c)
        pushed = await next_room_message(a)  # the room topic keeps the room's order: bob's was skipped
        assert (pushed.message["content"], pushed.seq) == ("carol after bob", carols.seq)

        await a.subscribe_room(None)
        page = await a.subscribe_room(room, seq=0)  # a room page hides it too, and counts it
        assert contents(page.messages) == ["bob before", "carol after bob"]
        assert page.last_seq == carols.seq
    finally:
        for client in (a, b, c):
            await client.close()


async def test_bad_blocks_are_refused_with_code_5_and_never_reach_kafka(system: System) -> None:
    alice = uid("alice")
    a = await system.client(system.a, alice)
    try:
        with pytest.raises(ChatError) as info:
            await a.block(alice)
        assert (info.value.code, info.value.data.get("field")) == (5, "user_id")
        for bad in ("", "bad id", "x" * 129):
            with pytest.raises(ChatError) as info:
                await a.block(bad)
            assert info.value.code == 5
        async with await api(system, alice) as http:
            for call in (http.block(alice), http.block("-no"), http.unblock(alice)):
                with pytest.raises(ChatError) as info:
                    await call
                assert (info.value.code, info.value.data.get("http_status")) == (5, 422)
            assert await http.blocks() == []
        bob = uid("bob")
        assert (await a.unblock(bob))["blocked"] is False  # nothing to lift: nothing published
        codec = build_codec(system.settings)
        topic = TopicCatalog(system.settings).resolve(USER_EVENTS).name
        events = await read_topic(system.settings, codec, topic)
        assert not [e for e in events if isinstance(e.payload, UserBlocked | UserUnblocked) and e.user_id == alice]
    finally:
        await a.close()
