"""The broker loses its log under a running worker: the embedded broker is killed (kill -9) and a
new one starts on the same port with empty logs and no consumer groups. The worker keeps running
through the outage; every message the new broker acknowledges must be stored and reach both
inboxes (a consumer position left past a partition's new end would skip them silently)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from chat_events.codec import build_codec
from chat_events.events.conversations import conversation_id_of
from chat_events.events.factory import new_envelope
from chat_events.events.types import PersonalChatSent
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.kafka.embedded import EmbeddedBroker
from chat_events.producers.publisher import EventPublisher
from chat_events.settings import Settings
from chat_events.store.factory import open_store
from chat_events.store.port import MessageStore
from tests.conftest import make_settings
from tests.integration.worker_harness import WorkerProcess, wait_until

pytestmark = pytest.mark.integration


async def send(settings: Settings, target: KafkaTarget, users: list[str], n: int) -> dict[str, tuple[str, str]]:
    """``n`` 1:1 messages among ``users``; returns message id -> (sender, target) of each ACKed one."""
    envelopes = []
    for i in range(n):
        sender, target_id = users[(2 * i) % len(users)], users[(2 * i + 1) % len(users)]
        event = PersonalChatSent(
            message_id=str(uuid.uuid4()), sender_id=sender, target_id=target_id, payload=f"m{i}", target_type="user"
        )
        envelopes.append(new_envelope(replace(event, conversation_id=conversation_id_of(event)), user_id=sender))
    async with EventPublisher(settings, target, build_codec(settings)) as publisher:
        await publisher.publish_many(envelopes)
    return {e.payload.message_id: (e.payload.sender_id, e.payload.target_id) for e in envelopes}  # type: ignore[union-attr]


async def missing(store: MessageStore, sent: dict[str, tuple[str, str]]) -> set[str]:
    """Message ids of ``sent`` not yet stored, or not yet in both inboxes."""
    found = await store.find_messages(sent)
    inboxed = await store.find_inbox_entries([(user, mid) for mid, pair in sent.items() for user in pair])
    return {mid for mid, pair in sent.items() if mid not in found or any((u, mid) not in inboxed for u in pair)}


async def test_a_running_worker_catches_up_after_the_broker_lost_its_log(tmp_path: Path) -> None:
    broker = EmbeddedBroker(0)
    broker.start()
    port = broker.port
    target = KafkaTarget(broker.bootstrap_servers, embedded=True)
    settings = make_settings(
        target,
        tmp_path,
        worker_app_id=f"w-reset-{uuid.uuid4().hex[:6]}",
        worker_session_timeout_s=6.0,
        worker_rebalance_timeout_s=3.0,
    )
    users = [f"r{i}-{uuid.uuid4().hex[:4]}" for i in range(8)]
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        await ensure_topics(settings, target)
        worker.start()
        async with open_store(settings) as store:
            before = await send(settings, target, users, 120)  # positions well past 0 on every partition
            await wait_until(lambda: _none_missing(store, before), timeout=60, what="the messages before the kill")

            broker.kill()  # kill -9: every record, offset and group is gone
            await asyncio.sleep(1.0)
            broker = EmbeddedBroker(port)
            broker.start()
            await ensure_topics(settings, target)
            after = await send(settings, target, users, 30)
            await wait_until(
                lambda: _none_missing(store, after), timeout=90, what="every message acknowledged after the restart"
            )
            assert worker.proc is not None and worker.proc.poll() is None, worker.log()  # it never exited
            assert not await missing(store, before)
    finally:
        worker.stop()
        broker.stop()
    assert "is past the log end" in (tmp_path / "worker.log").read_text()  # said loudly, not silently repaired


async def _none_missing(store: MessageStore, sent: dict[str, tuple[str, str]]) -> bool:
    return not await missing(store, sent)
