"""ChatClient against a fake edge on a real socket: sign-in, idempotent retries, ordering, gaps, acks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection

from chat_events.api.protocol import Close, Code
from chat_events.client import (
    ChatClient,
    ChatError,
    ConnectionEvent,
    ConnectionLost,
    GapNotRecoverable,
    TypingEvent,
)
from tests.unit.client.fake_edge import GOOD_TOKEN, FakeEdge, frame, message_view


@pytest.fixture
async def edge() -> AsyncIterator[FakeEdge]:
    async with FakeEdge() as fake:
        yield fake


def client(edge: FakeEdge, **kwargs: Any) -> ChatClient:
    kwargs.setdefault("token", GOOD_TOKEN)
    kwargs.setdefault("device_id", "laptop")
    return ChatClient(edge.url, **kwargs)


async def receive_seqs(chat: ChatClient, count: int) -> list[int]:
    return [(await chat.receive(timeout=1)).user_seq for _ in range(count)]


async def test_sign_in_by_headers(edge: FakeEdge) -> None:
    async with client(edge) as chat:
        assert (chat.user_id, chat.session_id, chat.edge_id) == ("alice", "s1", "edge-1")
        assert chat.sign_in_info.device_id == "laptop"
    assert edge.headers[0]["authorization"] == f"Bearer {GOOD_TOKEN}"
    assert edge.headers[0]["x-device-id"] == "laptop"
    assert not edge.of_type("sign_in")


async def test_sign_in_by_first_frame(edge: FakeEdge) -> None:
    async with client(edge, header_auth=False) as chat:
        assert chat.user_id == "alice"
    assert "authorization" not in edge.headers[0]
    first = edge.frames[0]
    assert first["type"] == "sign_in"
    assert first["data"] == {"token": GOOD_TOKEN, "device_id": "laptop"}


@pytest.mark.parametrize("header_auth", [True, False])
async def test_refused_sign_in_raises_the_code(edge: FakeEdge, header_auth: bool) -> None:
    with pytest.raises(ChatError) as caught:
        async with client(edge, token="bad", header_auth=header_auth):
            pass
    assert caught.value.code == Code.UNAUTHORIZED


async def test_connect_syncs_what_was_missed_in_pages(edge: FakeEdge) -> None:
    edge.store(7)
    async with client(edge, last_seq=2, sync_page_size=2) as chat:
        assert await receive_seqs(chat, 5) == [3, 4, 5, 6, 7]
        assert chat.last_seq == 7
    assert [f["data"]["seq"] for f in edge.of_type("sync")] == [2, 4, 6]


async def test_pushes_during_the_initial_sync_are_buffered_and_deduped(edge: FakeEdge) -> None:
    edge.store(7)

    async def push_mid_sync(ws: ServerConnection, seq: int) -> None:
        if seq == 0:
            await edge.push(7, 2, 3, socket=ws)  # live pushes racing the first page

    edge.on_sync = push_mid_sync
    async with client(edge, sync_page_size=3) as chat:
        assert await receive_seqs(chat, 7) == [1, 2, 3, 4, 5, 6, 7]
        with pytest.raises(TimeoutError):
            await chat.receive(timeout=0.05)


async def test_a_gap_in_pushes_triggers_a_sync_and_delivers_in_order_once(edge: FakeEdge) -> None:
    async with client(edge) as chat:
        edge.store(5)
        await edge.push(1, 4, 4, 5, 1)
        assert await receive_seqs(chat, 5) == [1, 2, 3, 4, 5]
        with pytest.raises(TimeoutError):
            await chat.receive(timeout=0.05)
    assert [f["data"]["seq"] for f in edge.of_type("sync")] == [0, 1]


async def test_not_recoverable_is_raised_once_then_delivery_goes_on(edge: FakeEdge) -> None:
    edge.store(7)
    for seq in (3, 4, 5):
        del edge.log[seq]
        edge.gone.add(seq)
    async with client(edge) as chat:
        assert await receive_seqs(chat, 2) == [1, 2]
        with pytest.raises(GapNotRecoverable) as caught:
            await chat.receive(timeout=1)
        assert (caught.value.from_seq, caught.value.to_seq, caught.value.resume_seq) == (3, 5, 5)
        assert caught.value.code == Code.NOT_RECOVERABLE
        assert chat.last_seq == 5
        assert await receive_seqs(chat, 2) == [6, 7]


async def test_send_after_a_dropped_connection_reuses_the_client_msg_id(edge: FakeEdge) -> None:
    edge.drop_after_storing = 1
    async with client(edge) as chat:
        result = await chat.send("user", "bob", "hi")
        assert result.duplicate and result.message_id == "msg-1"
    sends = edge.of_type("send")
    assert len(sends) == 2 and len(edge.sockets) == 2
    assert sends[0]["data"]["client_msg_id"] == sends[1]["data"]["client_msg_id"]
    assert sends[0]["data"] == {
        "target_type": "user",
        "target_id": "bob",
        "message_type": "text",
        "content": "hi",
        "client_msg_id": sends[0]["data"]["client_msg_id"],
    }


async def test_send_retries_unavailable_with_the_same_client_msg_id(edge: FakeEdge) -> None:
    edge.unavailable = 2
    async with client(edge) as chat:
        result = await chat.send("user", "bob", "hi", client_msg_id="nonce-1", mentions=["bob"])
    assert not result.duplicate
    assert [f["data"]["client_msg_id"] for f in edge.of_type("send")] == ["nonce-1"] * 3
    assert edge.of_type("send")[0]["data"]["mentions"] == ["bob"]


async def test_send_gives_up_after_the_retries(edge: FakeEdge) -> None:
    edge.unavailable = 5
    async with client(edge) as chat:
        with pytest.raises(ChatError) as caught:
            await chat.send("user", "bob", "hi", retries=1)
    assert caught.value.code == Code.UNAVAILABLE and caught.value.retriable
    assert len(edge.of_type("send")) == 2


async def test_rate_limited_raises_unless_asked_to_wait(edge: FakeEdge) -> None:
    edge.rate_limited = 2
    async with client(edge) as chat:
        with pytest.raises(ChatError) as caught:
            await chat.send("user", "bob", "hi")
        assert caught.value.code == Code.RATE_LIMITED and caught.value.retry_after_ms == 20
        result = await chat.send("user", "bob", "hi", wait_on_rate_limit=True)
    assert result.message_id == "msg-1"
    assert len(edge.of_type("send")) == 3  # refused, refused (waited 20 ms), accepted


async def test_other_refusals_raise_without_retry(edge: FakeEdge) -> None:
    async with client(edge) as chat:
        with pytest.raises(ChatError) as caught:
            await chat.send("group", "stranger", "hi")
    assert caught.value.code == Code.FORBIDDEN and caught.value.message == "not a member"
    assert len(edge.of_type("send")) == 1


async def test_acks_are_coalesced_and_a_last_one_is_sent_on_close(edge: FakeEdge) -> None:
    edge.store(120)
    chat = client(edge, ack_interval_s=0.1)
    await chat.connect()
    assert await receive_seqs(chat, 120) == list(range(1, 121))
    acks = await edge.wait_for("ack")
    await asyncio.sleep(0.25)
    acks = edge.of_type("ack")
    assert 1 <= len(acks) <= 4  # every 50 deliveries or 100 ms, not one per message
    assert acks[-1]["data"] == {"seq": 120}
    assert chat.acked_seq == 120

    edge.store(3)
    await edge.push(121, 122, 123)
    assert await receive_seqs(chat, 3) == [121, 122, 123]
    await chat.close()
    assert edge.of_type("ack")[-1]["data"] == {"seq": 123}


async def test_heartbeats_every_heartbeat_s(edge: FakeEdge) -> None:
    edge.heartbeat_s = 0.05
    async with client(edge):
        await edge.wait_for("heartbeat", count=3)
    async with client(edge, heartbeat=False):
        before = len(edge.of_type("heartbeat"))
        await asyncio.sleep(0.15)
        assert len(edge.of_type("heartbeat")) == before


async def test_going_away_reconnects_and_syncs_when_auto_reconnect(edge: FakeEdge) -> None:
    async with client(edge, auto_reconnect=True) as chat:
        edge.store(2)
        await edge.push(1)
        assert await receive_seqs(chat, 1) == [1]
        await edge.sockets[-1].close(Close.GOING_AWAY, "edge shutting down")
        assert await receive_seqs(chat, 1) == [2]  # synced on the new connection
        assert len(edge.sockets) == 2
        assert edge.of_type("sync")[-1]["data"]["seq"] == 1


class Events(list[ConnectionEvent]):
    """What ``on_connection`` was told; :meth:`wait_for` a state."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = asyncio.Event()

    def __call__(self, event: ConnectionEvent) -> None:
        self.append(event)
        self._changed.set()

    async def wait_for(self, state: str) -> None:
        async with asyncio.timeout(5):
            while not any(event.state == state for event in self):
                self._changed.clear()
                await self._changed.wait()


async def test_connection_events_lost_failed_attempts_then_reconnected(edge: FakeEdge) -> None:
    events = Events()
    async with client(edge, auto_reconnect=True, on_connection=events) as chat:
        assert events == []  # the first connect is no change
        edge.refuse_sockets = 2
        await edge.sockets[-1].close(Close.GOING_AWAY, "edge shutting down")
        await events.wait_for("reconnected")
        assert [(e.state, e.attempt) for e in events] == [
            ("lost", 0),
            ("reconnecting", 1),
            ("reconnecting", 2),
            ("reconnected", 0),
        ]
        assert "1001" in events[0].detail and "1013" in events[1].detail and events[3].detail == "edge-1"
        assert chat.connected


async def test_connection_events_end_when_the_reconnect_is_refused_for_good(edge: FakeEdge) -> None:
    events = Events()
    async with client(edge, auto_reconnect=True, on_connection=events) as chat:
        chat.token = "expired"
        await edge.sockets[-1].close(Close.GOING_AWAY, "edge shutting down")
        await events.wait_for("ended")
        assert [e.state for e in events] == ["lost", "ended"] and "UNAUTHORIZED" in events[1].detail


async def test_a_kick_is_an_ended_event(edge: FakeEdge) -> None:
    events = Events()
    async with client(edge, auto_reconnect=True, on_connection=events):
        await edge.push_raw(frame("kicked", code=Code.CONFLICT_LOGIN, message="signed in elsewhere"))
        await edge.sockets[-1].close(Close.CONFLICT_LOGIN, "conflict login")
        await events.wait_for("ended")
        assert [e.state for e in events] == ["ended"] and "signed in elsewhere" in events[0].detail


async def test_lost_connection_without_auto_reconnect_ends_receive_until_reconnect(edge: FakeEdge) -> None:
    async with client(edge) as chat:
        edge.store(1)
        await edge.sockets[-1].close(Close.TRY_AGAIN_LATER, "too slow")
        with pytest.raises(ConnectionLost) as caught:
            await chat.receive(timeout=1)
        assert caught.value.close_code == Close.TRY_AGAIN_LATER
        await chat.reconnect()
        assert await receive_seqs(chat, 1) == [1]


async def test_kicked_ends_the_session_without_reconnecting(edge: FakeEdge) -> None:
    async with client(edge, auto_reconnect=True) as chat:
        await edge.push_raw(frame("kicked", code=Code.CONFLICT_LOGIN, message="signed in elsewhere"))
        await edge.sockets[-1].close(Close.CONFLICT_LOGIN, "conflict login")
        with pytest.raises(ConnectionLost) as caught:
            await chat.receive(timeout=1)
        assert caught.value.close_code == Close.CONFLICT_LOGIN
        with pytest.raises(ConnectionLost):
            await chat.send("user", "bob", "hi")
    assert len(edge.sockets) == 1


async def test_typing_pushes_reach_the_iterator_and_the_callback(edge: FakeEdge) -> None:
    seen: list[TypingEvent] = []
    async with client(edge, on_typing=seen.append) as chat:
        await chat.typing("user", "bob")
        push = {"conversation_id": "dm:alice:bob", "user_id": "bob", "target_type": "user", "target_id": "alice"}
        await edge.push_raw(frame("typing", {**push, "state": "start"}))
        events = chat.typing_events()
        event = await asyncio.wait_for(anext(events), 1)
        assert (event.user_id, event.state) == ("bob", "start")
        assert seen == [event]
    assert edge.of_type("typing")[0]["data"] == {"target_type": "user", "target_id": "bob", "state": "start"}


async def test_messages_iterator_ends_on_close(edge: FakeEdge) -> None:
    edge.store(2)
    chat = client(edge)
    await chat.connect()
    got = []
    async for delivery in chat.messages():
        got.append(delivery.user_seq)
        if len(got) == 2:
            await chat.close()
    assert got == [1, 2]


async def test_room_messages_are_deduped_by_conversation_seq(edge: FakeEdge) -> None:
    async with client(edge) as chat:
        page = await chat.subscribe_room("big-room", seq=3)
        assert (page.room_id, page.last_seq, page.has_more) == ("big-room", 3, False)
        for room, seq in (("big-room", 4), ("big-room", 4), ("big-room", 3), ("other", 9), ("big-room", 5)):
            await edge.push_raw(frame("room_message", {"room_id": room, "message": message_view(seq)}))
        rooms = chat.room_messages()
        assert [(await asyncio.wait_for(anext(rooms), 1)).seq for _ in range(2)] == [4, 5]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(rooms), 0.05)
    assert edge.of_type("subscribe_room")[0]["data"] == {"room_id": "big-room", "seq": 3, "limit": 100}


async def test_a_client_ahead_of_the_server_resumes_where_the_server_is(edge: FakeEdge) -> None:
    """The server lost data and answers NOT_RECOVERABLE with resume_seq below the client's seq."""
    edge.store(2)

    async def behind(ws: ServerConnection, seq: int) -> bool:
        if seq <= edge.last_seq:
            return False
        gap = {"from_seq": edge.last_seq + 1, "to_seq": seq, "resume_seq": edge.last_seq}
        rid = edge.of_type("sync")[-1]["request_id"]
        await ws.send(frame("sync", gap, request_id=rid, code=Code.NOT_RECOVERABLE, message="behind"))
        return True

    edge.on_sync = behind
    async with client(edge, last_seq=9) as chat:
        with pytest.raises(GapNotRecoverable) as caught:
            await chat.receive(timeout=1)
        assert caught.value.resume_seq == 2 and chat.last_seq == 2
        edge.store(1)
        await edge.push(3)
        assert await receive_seqs(chat, 1) == [3]
