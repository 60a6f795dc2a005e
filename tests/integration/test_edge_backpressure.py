"""Back-pressure from the workers to the edge, over the real system: while the worker is frozen
(SIGSTOP) the lag on the message path grows, the edge starts refusing sends with code 13 and a
``retry_after_ms`` (nothing of a refused send reaches Kafka), and once the worker runs again the
edge accepts sends again and every accepted message is delivered."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator

import pytest

from chat_events.api.protocol import Code
from chat_events.client import ChatClient, ChatError, HttpApi
from chat_events.codec import build_codec
from chat_events.events.types import PersonalChatSent
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.settings import Settings
from chat_events.topics import PERSONAL_CHAT, TopicCatalog
from tests.integration.edge_harness import EdgeProcess
from tests.integration.test_edge_e2e import edge_settings, receive_n
from tests.integration.worker_harness import WorkerProcess, read_topic

MAX_LAG = 5


@pytest.fixture
async def frozen_system(
    kafka_target: KafkaTarget, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Settings, WorkerProcess, EdgeProcess]]:
    tmp = tmp_path_factory.mktemp("backpressure")
    settings = edge_settings(kafka_target, tmp, edge_max_worker_lag=MAX_LAG, edge_lag_check_ms=100)
    await ensure_topics(settings, kafka_target)
    worker = WorkerProcess(settings, tmp / "worker.log")
    edge = EdgeProcess(settings, tmp / "edge.log")
    worker.start()
    edge.start()
    try:
        yield settings, worker, edge
    finally:
        assert worker.proc is not None
        if worker.proc.poll() is None:
            os.killpg(worker.proc.pid, signal.SIGCONT)
        edge.stop()
        worker.stop()


async def client(edge: EdgeProcess, user: str) -> ChatClient:
    async with HttpApi(edge.http) as api:
        token = (await api.dev_token(user)).token
    chat = ChatClient(edge.http, token=token, device_id="d1")
    await chat.connect()
    return chat


async def test_sends_are_refused_while_the_workers_lag_and_accepted_again_after(
    frozen_system: tuple[Settings, WorkerProcess, EdgeProcess],
) -> None:
    settings, worker, edge = frozen_system
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    a, b = await client(edge, alice), await client(edge, bob)
    try:
        assert worker.proc is not None
        os.killpg(worker.proc.pid, signal.SIGSTOP)  # the worker stops consuming; the lag grows
        accepted: list[str] = []
        refusal: ChatError | None = None
        for i in range(200):
            try:
                accepted.append((await a.send("user", bob, f"m{i}", retries=0)).message_id)
            except ChatError as exc:
                refusal = exc
                break
            await asyncio.sleep(0.03)
        assert refusal is not None, f"{len(accepted)} sends accepted, none refused"
        assert refusal.code == Code.UNAVAILABLE and (refusal.retry_after_ms or 0) > 0
        assert MAX_LAG <= len(accepted) < 200

        codec = build_codec(settings)
        topic = TopicCatalog(settings).resolve(PERSONAL_CHAT).name
        sent = [
            e.payload.message_id
            for e in await read_topic(settings, codec, topic)
            if isinstance(e.payload, PersonalChatSent) and e.payload.sender_id == alice
        ]
        assert sorted(sent) == sorted(accepted)  # the refused send never reached Kafka

        os.killpg(worker.proc.pid, signal.SIGCONT)  # the worker catches up, the gate reopens
        late = await a.send("user", bob, "after the backlog", retries=20)  # waits retry_after_ms between tries
        got = await receive_n(b, len(accepted) + 1, timeout=60)
        assert [d.message["message_id"] for d in got] == [*accepted, late.message_id]
    finally:
        await a.close()
        await b.close()
