"""The ``userDisconnected`` an edge publishes over real uvicorn sockets: the edge's reason when it
closed the socket (uvicorn reports that close to the reader as a ``websocket.disconnect``), the
client's code when the client closed."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from chat_events.api.tokens import issue_token
from chat_events.codec import build_codec
from chat_events.events.types import UserDisconnected
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.settings import Settings
from chat_events.topics import USER_EVENTS, TopicCatalog
from tests.conftest import make_settings
from tests.integration.edge_harness import EdgeProcess
from tests.integration.worker_harness import WorkerProcess, read_topic, wait_until


@dataclass
class Edge:
    settings: Settings
    edge: EdgeProcess

    async def signed_in(self, user: str) -> ClientConnection:
        token = issue_token(user, self.settings.auth_secret.get_secret_value(), ttl_s=600)[0]
        ws = await connect(self.edge.ws, additional_headers={"Authorization": f"Bearer {token}"})
        reply = json.loads(await ws.recv())
        assert reply["type"] == "sign_in" and reply["code"] == 0, reply
        return ws

    async def disconnects_of(self, user: str) -> list[tuple[str, int, bool]]:
        topic = TopicCatalog(self.settings).resolve(USER_EVENTS).name
        return [
            (e.payload.reason, e.payload.code, e.payload.forced)
            for e in await read_topic(self.settings, build_codec(self.settings), topic)
            if e.user_id == user and isinstance(e.payload, UserDisconnected)
        ]

    async def announced(self, user: str) -> tuple[str, int, bool]:
        found: list[tuple[str, int, bool]] = []

        async def published() -> bool:
            found[:] = await self.disconnects_of(user)
            return bool(found)

        await wait_until(published, what=f"the userDisconnected of {user}")
        assert len(found) == 1, found
        return found[0]


@pytest.fixture(scope="module")
async def edge(kafka_target: KafkaTarget, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Edge]:
    tmp: Path = tmp_path_factory.mktemp("disconnects")
    settings = make_settings(kafka_target, tmp, worker_app_id=f"w-{uuid.uuid4().hex[:8]}", ws_heartbeat_s=1)
    await ensure_topics(settings, kafka_target)
    worker = WorkerProcess(settings, tmp / "worker.log")
    process = EdgeProcess(settings, tmp / "edge.log")
    worker.start()
    process.start()
    try:
        yield Edge(settings, process)
    finally:
        process.stop()
        worker.stop()


def uid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


async def test_a_silent_socket_is_announced_as_idle_timeout(edge: Edge) -> None:
    user = uid("silent")
    async with await edge.signed_in(user) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()  # nothing sent: closed after 2 x heartbeat_s
        assert ws.close_code == 4000
    assert await edge.announced(user) == ("idle_timeout", 4000, True)


async def test_an_oversize_frame_is_announced_as_frame_too_large(edge: Edge) -> None:
    user = uid("big")
    async with await edge.signed_in(user) as ws:
        await ws.send(json.dumps({"type": "heartbeat", "request_id": 1, "pad": "x" * (70 * 1024)}))
        with pytest.raises(ConnectionClosed):
            while True:
                await ws.recv()
        assert ws.close_code == 1009
    assert await edge.announced(user) == ("frame_too_large", 1009, True)


@pytest.mark.parametrize("code", [1000, 1001])
async def test_a_client_close_is_announced_as_client_closed_with_its_code(edge: Edge, code: int) -> None:
    user = uid("leaver")
    ws = await edge.signed_in(user)
    await ws.close(code)
    assert await edge.announced(user) == ("client_closed", code, False)
