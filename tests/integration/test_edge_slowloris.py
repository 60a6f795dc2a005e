"""Slowloris: connections that never finish their request, or never sign in, are bounded.

A real ``chat-events edge`` (uvicorn on a real port) with a short header deadline and a small
cap on pending connections per client address. Client sockets are raw TCP or real WebSockets;
a second client address is another loopback address (127.0.0.2). No timing assertions: things
happen "eventually", within generous deadlines.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from chat_events.api.tokens import issue_token
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.settings import Settings
from tests.conftest import make_settings
from tests.integration.edge_harness import EdgeProcess
from tests.integration.worker_harness import WorkerProcess

CAP = 3
HEADER_TIMEOUT_S = 1.0
GENEROUS_S = 30.0
OTHER_ADDRESS = "127.0.0.2"


@dataclass
class Guarded:
    settings: Settings
    edge: EdgeProcess

    def token(self, user: str) -> str:
        return issue_token(user, self.settings.auth_secret.get_secret_value(), ttl_s=600)[0]


@pytest.fixture(scope="module")
async def guarded(kafka_target: KafkaTarget, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Guarded]:
    tmp: Path = tmp_path_factory.mktemp("slowloris")
    settings = make_settings(
        kafka_target,
        tmp,
        worker_app_id=f"w-{uuid.uuid4().hex[:8]}",
        edge_header_timeout_s=HEADER_TIMEOUT_S,
        edge_max_pending_per_address=CAP,
        ws_sign_in_timeout_s=60.0,  # pending WebSockets stay pending for the whole test
    )
    await ensure_topics(settings, kafka_target)
    worker = WorkerProcess(settings, tmp / "worker.log")
    edge = EdgeProcess(settings, tmp / "edge.log")
    worker.start()
    edge.start()
    try:
        yield Guarded(settings, edge)
    finally:
        edge.stop()
        worker.stop()


def read_until_closed(sock: socket.socket, timeout_s: float = GENEROUS_S) -> bytes:
    """Everything the edge sends until it closes the connection (fails if it never does)."""
    sock.settimeout(timeout_s)
    received = b""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"still open after {timeout_s} s; got {received!r}")


def read_response(sock: socket.socket) -> bytes:
    """One whole response (headers and a content-length body) from a kept-alive connection."""
    sock.settimeout(GENEROUS_S)
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    assert len(body) == length, "one response at a time"
    return head + b"\r\n\r\n" + body


def partial_request(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n")  # never finished
    return sock


async def test_an_incomplete_request_is_closed(guarded: Guarded) -> None:
    sock = await asyncio.to_thread(partial_request, guarded.edge.port)
    with sock:
        answer = await asyncio.to_thread(read_until_closed, sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["code"] == 3
    with socket.create_connection(("127.0.0.1", guarded.edge.port)) as silent:  # not one byte sent
        assert (await asyncio.to_thread(read_until_closed, silent)).startswith(b"HTTP/1.1 408 ")


async def test_a_kept_alive_connection_must_finish_its_next_request_too(guarded: Guarded) -> None:
    def run() -> bytes:
        with socket.create_connection(("127.0.0.1", guarded.edge.port)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            first = read_response(sock)
            assert first.startswith(b"HTTP/1.1 200 "), first
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # the next one never finishes
            return read_until_closed(sock)

    closing = await asyncio.to_thread(run)
    assert closing == b"" or closing.startswith(b"HTTP/1.1 408 ")  # the keep-alive timeout may come first


async def pending_ws(guarded: Guarded, *, local: str = "127.0.0.1") -> ClientConnection:
    """A WebSocket that is open but not signed in (sign-in would be the first frame)."""
    return await connect(guarded.edge.ws, local_addr=(local, 0), open_timeout=GENEROUS_S)


async def refused_status(guarded: Guarded) -> int:
    with pytest.raises(InvalidStatus) as refused:
        await pending_ws(guarded)
    return refused.value.response.status_code


async def admitted_eventually(guarded: Guarded) -> ClientConnection:
    deadline = time.monotonic() + GENEROUS_S
    while True:
        try:
            return await pending_ws(guarded)
        except InvalidStatus:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def sign_in(guarded: Guarded, ws: ClientConnection, user: str) -> None:
    await ws.send(
        json.dumps({"type": "sign_in", "request_id": 1, "data": {"token": guarded.token(user), "device_id": "d"}})
    )
    reply = json.loads(await asyncio.wait_for(ws.recv(), GENEROUS_S))
    assert reply["code"] == 0, reply


async def test_pending_connections_per_address_are_capped_until_sign_in(guarded: Guarded) -> None:
    held = [await admitted_eventually(guarded) for _ in range(CAP)]
    try:
        assert await refused_status(guarded) == 429  # the N+1th from this address
        async with httpx.AsyncClient(base_url=guarded.edge.http) as http:  # HTTP from it too, in the shape
            refused = await http.get("/healthz")
        assert (refused.status_code, refused.json()["code"]) == (429, 10)
        other = await pending_ws(guarded, local=OTHER_ADDRESS)  # another address is not affected
        await other.close()
        from_other = httpx.AsyncHTTPTransport(local_address=OTHER_ADDRESS)
        async with httpx.AsyncClient(base_url=guarded.edge.http, transport=from_other) as http:
            assert (await http.get("/healthz")).status_code == 200
        await sign_in(guarded, held[0], f"u-{uuid.uuid4().hex[:6]}")  # signed in: no longer pending
        held.append(await admitted_eventually(guarded))
        assert await refused_status(guarded) == 429
    finally:
        for ws in held:
            await ws.close()
    # closing them frees the address again
    again = await admitted_eventually(guarded)
    await again.close()


async def test_answered_requests_are_not_pending(guarded: Guarded) -> None:
    async with httpx.AsyncClient(base_url=guarded.edge.http, limits=httpx.Limits(max_connections=1)) as http:
        for _ in range(3 * CAP):  # one kept-alive connection, many answered requests
            assert (await http.get("/healthz")).status_code == 200
    transports = [httpx.AsyncClient(base_url=guarded.edge.http) for _ in range(3 * CAP)]
    try:  # many connections whose requests are answered do not add up either
        for client in transports:
            assert (await client.get("/healthz")).status_code == 200
    finally:
        for client in transports:
            await client.aclose()
