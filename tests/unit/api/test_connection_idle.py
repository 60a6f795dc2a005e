"""One socket's outbound queue and writer, the idle sweep, and a session's reader on a fake
ASGI socket: frames in order, a writer only while frames wait, slow and idle sockets closed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast

import orjson
import pytest
from starlette.websockets import WebSocket, WebSocketState

from chat_events.api.connection import Connection
from chat_events.api.idle import IdleSweep, is_idle, sweep_interval_s
from chat_events.api.presence_feed import PresenceFeed
from chat_events.api.protocol import Close
from chat_events.api.registry import ConnectionRegistry
from chat_events.api.tokens import issue_token
from chat_events.api.ws_session import WsSession
from chat_events.settings import Settings

# --- the idle rule -------------------------------------------------------------------------


def test_idle_rule_matches_a_timeout_per_receive() -> None:
    assert not is_idle(100.0, 159.9, 60.0)
    assert is_idle(100.0, 160.0, 60.0)
    assert sweep_interval_s(60.0) == 1.0  # at most a second late
    assert sweep_interval_s(2.0) == pytest.approx(0.1)
    assert sweep_interval_s(0.5) == 0.05


def test_the_sweep_wakes_only_silent_sockets() -> None:
    sweep = IdleSweep(idle_s=10.0)
    woken: list[str] = []

    def watched(name: str, since: float) -> Connection:
        c = Connection(user_id=name, device_id="d", session_id=name, socket=cast(Any, None), queue_max=10)
        c.idle_since_s = since
        c.wake = lambda: woken.append(name)
        sweep.watch(c)
        return c

    watched("fresh", 95.0)
    old = watched("old", 90.0)
    watched("older", 50.0)
    assert sorted(c.user_id for c in sweep.idle(100.0)) == ["old", "older"]
    assert sweep.sweep(100.0) == 2 and sorted(woken) == ["old", "older"]
    sweep.unwatch(old)
    woken.clear()
    assert sweep.sweep(100.0) == 1 and woken == ["older"]
    assert len(sweep) == 2


# --- the outbound queue and its writer -----------------------------------------------------


class FakeSocket:
    """What Connection uses of a starlette WebSocket; ``gate`` cleared = a peer not reading."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed_with: tuple[int, str] | None = None
        self.application_state = WebSocketState.CONNECTED
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False

    async def send_text(self, text: str) -> None:
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("peer gone")
        self.sent.append(text)

    async def close(self, code: int, reason: str = "") -> None:
        self.closed_with = (code, reason)
        self.application_state = WebSocketState.DISCONNECTED


def connection(socket: FakeSocket, queue_max: int = 10) -> Connection:
    return Connection(user_id="u", device_id="d", session_id="s", socket=cast(Any, socket), queue_max=queue_max)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_frames_queued_before_start_follow_in_order_and_no_writer_stays_behind() -> None:
    socket = FakeSocket()
    c = connection(socket)
    assert c.push("a") and c.push("b")
    await settle()
    assert socket.sent == []  # not started: the sign-in answer goes first
    c.start()
    await settle()
    assert socket.sent == ["a", "b"]
    assert c._writer is None and c._queue is None and c.queued == 0  # idle: nothing per socket
    assert c.push("c") and c.push("d")
    await settle()
    assert socket.sent == ["a", "b", "c", "d"] and c._writer is None and not c.closed


async def test_close_comes_after_the_frames_already_queued() -> None:
    socket = FakeSocket()
    c = connection(socket)
    c.start()
    c.push("kicked")
    c.close(Close.CONFLICT_LOGIN, "conflict login")
    assert not c.push("too late")
    await c.wait_closed(1.0)
    assert socket.sent == ["kicked"] and socket.closed_with == (4007, "conflict login")
    assert c.closed and not c.push("after")


async def test_a_slow_socket_is_closed_with_1013_after_what_was_queued() -> None:
    socket = FakeSocket()
    socket.gate.clear()  # the peer does not read
    c = connection(socket, queue_max=3)
    c.start()
    assert c.push("f0")
    await settle()  # f0 is being written
    assert all(c.push(f"f{i}") for i in range(1, 4)) and c.queued == 3
    assert not c.push("one too many")
    assert c.close_code == Close.TRY_AGAIN_LATER
    socket.gate.set()
    await c.wait_closed(1.0)
    assert socket.sent == ["f0", "f1", "f2", "f3"] and socket.closed_with is not None
    assert socket.closed_with[0] == 1013


async def test_a_failed_write_closes_and_wakes_the_reader() -> None:
    socket = FakeSocket()
    socket.fail = True
    c = connection(socket)
    woken: list[bool] = []
    c.wake = lambda: woken.append(True)
    c.start()
    c.push("x")
    await c.wait_closed(1.0)
    assert c.closed and woken == [True] and not c.push("y")


async def test_stop_writer_gives_up_on_a_stuck_socket() -> None:
    socket = FakeSocket()
    socket.gate.clear()
    c = connection(socket)
    c.start()
    c.push("stuck")
    c.close(Close.NORMAL)
    await c.wait_closed(0.05)
    assert not c.closed
    await c.stop_writer()
    assert c.closed and c._writer is None


# --- a session's reader ----------------------------------------------------------------------


class Peer:
    """The client end of an ASGI WebSocket, behaving like uvicorn's sans-I/O protocol: closing
    from the app side queues a ``websocket.disconnect`` for the app's reader."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.inbound: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.inbound.put_nowait({"type": "websocket.connect"})
        self.sent: list[dict[str, Any]] = []
        self.disconnect_on_close = True
        scope = {
            "type": "websocket",
            "path": "/ws",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "query_string": b"",
        }
        self.socket = WebSocket(scope, self._receive, self._send)

    async def _receive(self) -> dict[str, Any]:
        return await self.inbound.get()

    async def _send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        if message["type"] == "websocket.close" and self.disconnect_on_close:
            self.inbound.put_nowait({"type": "websocket.disconnect", "code": message.get("code", 1000)})

    def send(self, frame: dict[str, Any]) -> None:
        self.inbound.put_nowait({"type": "websocket.receive", "text": orjson.dumps(frame).decode()})

    def frames(self) -> list[dict[str, Any]]:
        return [orjson.loads(m["text"]) for m in self.sent if m["type"] == "websocket.send"]

    @property
    def close_code(self) -> int | None:
        return next((int(m.get("code", 1000)) for m in self.sent if m["type"] == "websocket.close"), None)


class FakePublisher:
    async def publish_user_connected(self, **_: Any) -> None:
        return None


class FakeStore:
    async def max_user_seqs(self, users: list[str]) -> dict[str, int]:
        return {}

    async def device_progress(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        return {}


class FakeEdge:
    """What WsSession uses of an EdgeNode."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.edge_id = "edge-test"
        self.registry = ConnectionRegistry(settings.max_connections_per_user)
        self.idle_sweep = IdleSweep(settings.ws_heartbeat_s * 2)
        self.presence = PresenceFeed()
        self.publisher = FakePublisher()
        self.store = FakeStore()
        self.stopping = False
        self.disconnects: list[tuple[str, str, int, bool]] = []

    async def await_session(self, user_id: str, session_id: str) -> bool:
        return True

    async def publish_disconnects(self, connections: list[Connection], *, reason: str, code: int, forced: bool) -> None:
        self.disconnects += [(c.user_id, reason, int(code), forced) for c in connections]


async def until(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def open_session(edge: FakeEdge, user: str, device: str = "phone") -> tuple[Peer, asyncio.Task[None]]:
    token, _ = issue_token(user, edge.settings.auth_secret.get_secret_value(), ttl_s=60)
    peer = Peer({"Authorization": f"Bearer {token}", "X-Device-Id": device})
    await peer.socket.accept()
    task = asyncio.ensure_future(WsSession(cast(Any, edge), peer.socket).run())
    await until(lambda: any(f["type"] == "sign_in" for f in peer.frames()))
    return peer, task


@pytest.fixture
def edge() -> FakeEdge:
    return FakeEdge(Settings(ws_heartbeat_s=5))


async def test_a_silent_socket_is_closed_with_4000_by_the_sweep_and_a_heartbeat_keeps_it(edge: FakeEdge) -> None:
    peer, task = await open_session(edge, "alice")
    assert peer.frames()[0]["code"] == 0 and len(edge.idle_sweep) == 1
    (conn,) = edge.registry.of_user("alice")
    assert edge.idle_sweep.sweep(conn.idle_since_s + 9.9) == 0  # idle after 2 x 5 s
    peer.send({"type": "heartbeat", "request_id": 1})
    await until(lambda: len(peer.frames()) == 2)
    assert peer.frames()[1]["type"] == "heartbeat"
    since = conn.idle_since_s
    assert edge.idle_sweep.sweep(since + 10.0) == 1
    await asyncio.wait_for(task, 2)
    assert peer.close_code == Close.IDLE_TIMEOUT
    assert edge.disconnects == [("alice", "idle_timeout", 4000, True)]
    assert len(edge.idle_sweep) == 0 and len(edge.registry) == 0


async def test_signing_in_again_on_the_same_device_kicks_the_older_socket(edge: FakeEdge) -> None:
    first, first_task = await open_session(edge, "bob")
    second, second_task = await open_session(edge, "bob")
    await asyncio.wait_for(first_task, 2)
    assert [f["type"] for f in first.frames()] == ["sign_in", "kicked"]
    assert first.close_code == Close.CONFLICT_LOGIN
    assert ("bob", "conflict_login", 4007, True) in edge.disconnects
    assert not second_task.done() and second.close_code is None
    second.inbound.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(second_task, 2)
    assert edge.disconnects[-1] == ("bob", "client_closed", 1000, False)


async def test_a_socket_closed_by_the_edge_ends_its_session(edge: FakeEdge) -> None:
    peer, task = await open_session(edge, "carol")
    (conn,) = edge.registry.of_user("carol")
    conn.push('{"type": "message"}')
    conn.close(Close.GOING_AWAY, "edge shutting down")
    await asyncio.wait_for(task, 2)
    assert [f["type"] for f in peer.frames()] == ["sign_in", "message"]
    assert peer.close_code == Close.GOING_AWAY and len(edge.registry) == 0


async def test_a_woken_reader_whose_peer_never_answers_still_ends(edge: FakeEdge) -> None:
    """A close the ASGI server does not turn into a ``websocket.disconnect`` (unlike uvicorn's):
    the reader is woken when the writer is done."""
    peer, task = await open_session(edge, "dave")
    peer.disconnect_on_close = False
    (conn,) = edge.registry.of_user("dave")
    conn.close(Close.TRY_AGAIN_LATER, "too slow; reconnect and sync")
    await asyncio.wait_for(task, 2)
    assert peer.close_code == Close.TRY_AGAIN_LATER
    assert edge.disconnects == [("dave", "too_slow", 1013, True)]


async def test_the_running_sweep_closes_a_silent_socket_in_time(edge: FakeEdge) -> None:
    edge.idle_sweep = IdleSweep(idle_s=0.2)  # checked every 50 ms
    sweeper = asyncio.ensure_future(edge.idle_sweep.run())
    try:
        started = time.monotonic()
        peer, task = await open_session(edge, "erin")
        await asyncio.wait_for(task, 2)
        assert peer.close_code == Close.IDLE_TIMEOUT
        assert 0.2 <= time.monotonic() - started < 1.0
    finally:
        sweeper.cancel()
