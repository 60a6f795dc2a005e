"""What a session's ``userDisconnected`` says: the server's reason when the server closed the
socket (even though uvicorn reports the end to the reader as a ``websocket.disconnect``), the
client's code when the client did; and a session whose peer drops during sign-in is not leaked."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from chat_events.api.handlers import FrameHandlers
from chat_events.api.protocol import Close, Code, ProtocolError
from chat_events.api.tokens import issue_token
from chat_events.api.ws_session import WsSession
from chat_events.errors import ChatEventsError
from chat_events.settings import Settings
from tests.unit.api.test_connection_idle import FakeEdge, Peer, open_session, settle, until


@pytest.fixture
def edge() -> FakeEdge:
    return FakeEdge(Settings(ws_heartbeat_s=5, ws_outbound_queue=10, ws_max_frame_bytes=1024))


async def test_a_socket_closed_for_being_too_slow_is_announced_as_too_slow(edge: FakeEdge) -> None:
    peer, task = await open_session(edge, "alice")
    (conn,) = edge.registry.of_user("alice")
    assert all(conn.push(f'{{"type": "message", "n": {i}}}') for i in range(10))
    assert not conn.push('{"type": "message", "n": 10}')  # the queue holds 10: overflow closes with 1013
    await asyncio.wait_for(task, 2)
    assert peer.close_code == Close.TRY_AGAIN_LATER
    assert edge.disconnects == [("alice", "too_slow", 1013, True)]
    assert len(edge.registry) == 0


@pytest.mark.parametrize(
    ("close", "expected"),
    [
        (Close.POLICY, ("bob", "protocol_error", 1008, True)),
        (Close.UNAUTHORIZED, ("bob", "protocol_error", 4001, True)),
    ],
)
async def test_a_protocol_error_close_is_announced_with_its_code(
    edge: FakeEdge, monkeypatch: pytest.MonkeyPatch, close: Close, expected: tuple[str, str, int, bool]
) -> None:
    async def refuse(self: FrameHandlers, frame: Any) -> str | None:
        raise ProtocolError(Code.INVALID_FIELD, "refused", close=close, request_id=frame.request_id)

    monkeypatch.setattr(FrameHandlers, "handle", refuse)
    peer, task = await open_session(edge, "bob")
    peer.send({"type": "heartbeat", "request_id": 1})
    await asyncio.wait_for(task, 2)
    assert peer.frames()[-1]["code"] == Code.INVALID_FIELD and peer.close_code == close
    assert edge.disconnects == [expected]


async def test_a_frame_too_large_is_announced_with_1009(edge: FakeEdge) -> None:
    peer, task = await open_session(edge, "carol")
    peer.inbound.put_nowait({"type": "websocket.receive", "text": "x" * 2000})
    await asyncio.wait_for(task, 2)
    assert peer.close_code == Close.TOO_BIG
    assert edge.disconnects == [("carol", "frame_too_large", 1009, True)]


async def test_a_socket_closed_going_away_is_announced_by_the_session_unless_the_edge_stops(edge: FakeEdge) -> None:
    peer, task = await open_session(edge, "dave")
    (conn,) = edge.registry.of_user("dave")
    conn.close(Close.GOING_AWAY, "going away")
    await asyncio.wait_for(task, 2)
    assert edge.disconnects == [("dave", "edge_shutdown", 1001, True)]

    edge.disconnects.clear()
    peer, task = await open_session(edge, "dave")
    (conn,) = edge.registry.of_user("dave")
    edge.stopping = True  # EdgeNode.shed_connections: the node announces every session itself
    conn.close(Close.GOING_AWAY, "edge shutting down")
    await asyncio.wait_for(task, 2)
    assert peer.close_code == Close.GOING_AWAY and len(edge.registry) == 0
    assert edge.disconnects == []


async def test_a_frame_refused_by_uvicorn_as_too_large_is_announced_with_1009(edge: FakeEdge) -> None:
    """uvicorn's own ``ws_max_size`` check closes with 1009 and tells the app only ``disconnect``."""
    peer, task = await open_session(edge, "cody")
    peer.inbound.put_nowait({"type": "websocket.disconnect", "code": 1009, "reason": "over size limit"})
    await asyncio.wait_for(task, 2)
    assert edge.disconnects == [("cody", "frame_too_large", 1009, True)]


@pytest.mark.parametrize("code", [1000, 1001, 4000])
async def test_a_client_close_stays_client_closed_with_the_clients_code(edge: FakeEdge, code: int) -> None:
    """Even with a code the server also uses (1001, 4000): the client closed, nothing was forced."""
    peer, task = await open_session(edge, "erin")
    peer.inbound.put_nowait({"type": "websocket.disconnect", "code": code})
    await asyncio.wait_for(task, 2)
    assert peer.close_code is None or peer.close_code == Close.NORMAL
    assert edge.disconnects == [("erin", "client_closed", code, False)]
    assert len(edge.registry) == 0


async def test_a_peer_gone_while_a_frame_is_written_is_not_announced_as_forced(edge: FakeEdge) -> None:
    """A write that fails (the peer went away) is no decision of the server's."""
    peer, task = await open_session(edge, "frank")

    async def gone(message: dict[str, Any]) -> None:
        raise OSError("peer gone")

    peer.socket._send = gone
    (conn,) = edge.registry.of_user("frank")
    conn.push('{"type": "message"}')
    await asyncio.wait_for(task, 2)
    assert edge.disconnects == [("frank", "client_closed", 1006, False)]
    assert len(edge.registry) == 0


# --- a peer that drops during sign-in ------------------------------------------------------------


class DroppingPeer(Peer):
    """A peer that goes away before the sign-in answer is written: sending raises ``error``."""

    def __init__(self, headers: dict[str, str], error: Exception) -> None:
        super().__init__(headers)
        self.error = error

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            raise self.error
        await super()._send(message)


@pytest.mark.parametrize("error", [OSError("peer gone"), RuntimeError("Unexpected ASGI message 'websocket.send'")])
async def test_a_peer_gone_before_the_sign_in_answer_is_removed_and_announced(edge: FakeEdge, error: Exception) -> None:
    token, _ = issue_token("gina", edge.settings.auth_secret.get_secret_value(), ttl_s=60)
    peer = DroppingPeer({"Authorization": f"Bearer {token}", "X-Device-Id": "phone"}, error)
    await peer.socket.accept()
    await asyncio.wait_for(WsSession(cast(Any, edge), peer.socket).run(), 2)
    assert len(edge.registry) == 0 and len(edge.idle_sweep) == 0
    assert edge.disconnects == [("gina", "client_closed", 1006, False)]


async def test_a_peer_gone_before_the_sign_in_answer_while_the_edge_stops_is_left_to_the_edge(
    edge: FakeEdge,
) -> None:
    token, _ = issue_token("hank", edge.settings.auth_secret.get_secret_value(), ttl_s=60)
    peer = DroppingPeer({"Authorization": f"Bearer {token}", "X-Device-Id": "phone"}, OSError("peer gone"))
    await peer.socket.accept()
    edge.stopping = True
    await asyncio.wait_for(WsSession(cast(Any, edge), peer.socket).run(), 2)
    assert len(edge.registry) == 0 and edge.disconnects == []


async def test_a_failure_after_user_connected_during_sign_in_is_announced(edge: FakeEdge) -> None:
    """userConnected was published, then the store failed: the workers hear the session ended."""

    async def failing(users: list[str]) -> dict[str, int]:
        raise ChatEventsError("store down")

    edge.store.max_user_seqs = failing  # type: ignore[method-assign]
    token, _ = issue_token("ivy", edge.settings.auth_secret.get_secret_value(), ttl_s=60)
    peer = Peer({"Authorization": f"Bearer {token}", "X-Device-Id": "phone"})
    await peer.socket.accept()
    await asyncio.wait_for(WsSession(cast(Any, edge), peer.socket).run(), 2)
    await settle()
    assert peer.frames()[-1]["code"] == Code.UNAVAILABLE and peer.close_code == Close.TRY_AGAIN_LATER
    assert len(edge.registry) == 0
    assert edge.disconnects == [("ivy", "sign_in_failed", 1013, True)]


async def test_a_kick_is_still_conflict_login(edge: FakeEdge) -> None:
    first, first_task = await open_session(edge, "jack")
    _, second_task = await open_session(edge, "jack")
    await asyncio.wait_for(first_task, 2)
    assert first.close_code == Close.CONFLICT_LOGIN
    assert edge.disconnects == [("jack", "conflict_login", 4007, True)]
    second_task.cancel()
    await until(lambda: second_task.done())
