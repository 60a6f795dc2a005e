"""A kill -9 of the real Kafka broker under load, restarted on the same data: nothing the
broker ACKed is lost, and nothing is stored or delivered twice.

The test runs its own Kafka node (it kills it), a worker process on it and the session's
Cassandra as the store. Senders behave as edges do: a batch whose ACK did not come is sent
again with the same message ids until the broker ACKs it, so a batch written before the kill
but not acknowledged may reach the log twice; the persist stage stores it once.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from chat_events.codec import build_codec
from chat_events.engines import KafkaServer
from chat_events.errors import PublishError
from chat_events.events.types import Envelope
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.producers.publisher import EventPublisher
from chat_events.store.factory import open_store
from tests.conftest import make_settings
from tests.integration.test_worker_faults import check_invariants, inbox_count
from tests.integration.traffic import pair_envelopes, pairs_of
from tests.integration.worker_harness import WorkerProcess, wait_until
from tests.real_engines import Engines, skip_or_fail, unavailable_reason

MESSAGES = 2000
CHUNK = 100
KILL_AT = (MESSAGES // CHUNK // 3) * CHUNK
"""The chunk before which the broker is killed: a third of the way in."""


async def _send_until_acked(publisher: EventPublisher, envelopes: list[Envelope]) -> int:
    """Publish ``envelopes`` until the broker ACKs them all; returns the failed attempts."""
    failures = 0
    while True:
        try:
            await publisher.publish_many(envelopes)
            return failures
        except PublishError:
            failures += 1
            await asyncio.sleep(0.2)


async def test_kafka_killed_and_restarted_on_its_data_loses_nothing_acked(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    reason = unavailable_reason()
    if reason is not None:
        skip_or_fail(reason)
    engines: Engines = request.getfixturevalue("engines")
    kafka = KafkaServer(tmp_path / "kafka")
    kafka.start()
    target = KafkaTarget(kafka.bootstrap_servers, embedded=False)
    settings = make_settings(
        target,
        tmp_path,
        worker_app_id=f"w-bk-{uuid.uuid4().hex[:8]}",
        cassandra_contact_points=engines.cassandra_contact_point(),
        cassandra_keyspace=engines.keyspace(__name__),
        worker_session_timeout_s=6.0,
        worker_rebalance_timeout_s=3.0,
        kafka_send_timeout_s=3.0,
    )
    users = [f"k{i}-{uuid.uuid4().hex[:4]}" for i in range(30)]
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    sent: dict[str, tuple[str, str]] = {}
    failures = 0
    restarting: asyncio.Future[None] | None = None
    try:
        await ensure_topics(settings, target)
        worker.start()
        async with open_store(settings) as store, EventPublisher(settings, target, build_codec(settings)) as publisher:
            for start in range(0, MESSAGES, CHUNK):
                envelopes = pair_envelopes(start, min(MESSAGES, start + CHUNK), users)
                if start == KILL_AT:
                    kafka.kill()  # mid-run: batches in flight, the worker mid-batch

                    async def restart() -> None:
                        await asyncio.sleep(2.0)
                        await asyncio.to_thread(kafka.start)

                    restarting = asyncio.ensure_future(restart())
                failures += await _send_until_acked(publisher, envelopes)
                sent.update(pairs_of(envelopes))
            assert restarting is not None
            await restarting
            assert failures > 0, "the kill must have interrupted the senders"

            async def delivered() -> bool:
                # A worker whose transaction failed for good during the outage exits (never
                # committing over a gap); like `chat-events up`'s supervisor, restart it: it replays.
                if worker.proc is not None and worker.proc.poll() is not None:
                    worker.start()
                return await _at_least(store, users, 2 * MESSAGES)

            await wait_until(delivered, timeout=240, what="every ACKed message delivered")
            await asyncio.sleep(1.0)  # anything replayed late would show up as a duplicate now
            await check_invariants(store, sent)
    finally:
        worker.stop()
        kafka.stop()


async def _at_least(store: object, users: list[str], n: int) -> bool:
    return await inbox_count(store, users) >= n  # type: ignore[arg-type]
