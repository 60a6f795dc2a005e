"""Exactly-once worker outputs on real Apache Kafka (``CHAT_KAFKA_TRANSACTIONS=on``).

A real ``chat-events worker`` process, the session's real Kafka node and real Cassandra as the
store (``tests/real_engines.py``: the ``kafka`` stack), read through the store port. Messages
are published as an edge does; a ``read_committed`` consumer of ``chat.message-stored`` and
``chat.inbox`` must then see every message's outputs exactly once BY COUNT (not after dropping
repeats by id), also across a ``kill -9`` of the worker mid-stream.
Transaction markers in those topics (offsets that hold no record) prove the transactions were
really used; a ``read_uncommitted`` reader may see more (aborted records).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from chat_events.codec import build_codec
from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.events.types import MessageFannedOut, MessageFannedOutBatch, MessageStored
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.kafka.lag import group_lag as lag_by_topic
from chat_events.producers.kafka_producer import TRANSACTION_TIMEOUT_MS
from chat_events.producers.partitioner import partition_for
from chat_events.producers.publisher import EventPublisher
from chat_events.settings import Settings
from chat_events.store.factory import open_store
from chat_events.store.port import MessageStore
from chat_events.topics import INBOX, MESSAGE_STORED, PERSONAL_CHAT, TopicCatalog
from tests.conftest import make_settings
from tests.integration import traffic
from tests.integration.store_checks import check_invariants, inbox_count
from tests.integration.worker_harness import WorkerProcess, wait_until
from tests.real_engines import Engines

Isolation = Literal["read_committed", "read_uncommitted"]


@pytest.fixture(scope="module")
def real_kafka(engines: Engines) -> KafkaTarget:
    """The session's real Kafka node (skipped with one line where it cannot run)."""
    return KafkaTarget(engines.kafka_bootstrap(), embedded=False)


@pytest.fixture(scope="module")
def cassandra(engines: Engines) -> dict[str, object]:
    """The store settings of the session's real Cassandra, in this module's keyspace."""
    return {
        "cassandra_contact_points": engines.cassandra_contact_point(),
        "cassandra_keyspace": engines.keyspace(__name__),
    }


def txn_settings(target: KafkaTarget, tmp: Path, store: dict[str, object], **overrides: object) -> Settings:
    """Transactions on, real Cassandra as the store (its rows are what the invariants read)."""
    return make_settings(
        target, tmp, worker_app_id=f"w-{uuid.uuid4().hex[:8]}", kafka_transactions="on", **store, **overrides
    )


@dataclass
class Sent:
    """What the broker acknowledged: message id -> (sender, recipient)."""

    pairs: dict[str, tuple[str, str]]

    def inbox_records(self, partitions: int) -> int:
        """Records the fan-out writes to chat.inbox: one per inbox partition of the two users."""
        return sum(len({partition_for(u.encode(), partitions) for u in pair}) for pair in self.pairs.values())


async def send_pairs(publisher: EventPublisher, n: int, users: list[str], chunk: int = 200) -> Sent:
    """``n`` 1:1 messages among ``users`` in fixed pairs, in chunks, as edges publish them."""
    return Sent(await traffic.send_pairs(publisher, n, users, chunk))


@dataclass
class TopicRead:
    message_ids: list[str]
    """The message id of every record read, repeats included."""
    envelope_ids: list[str]
    records: int
    end_offsets: int
    """Sum of the partitions' end offsets (LSO under read_committed): records + markers + aborted."""


async def read_all(settings: Settings, codec: AvroEnvelopeCodec, topic: str, isolation: Isolation) -> TopicRead:
    """Every record of ``topic`` up to its current end, with ``isolation``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        isolation_level=isolation,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        read = TopicRead([], [], 0, sum(ends.values()))
        deadline = time.monotonic() + 30
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining and time.monotonic() < deadline:
            for records in (await consumer.getmany(*remaining, timeout_ms=200)).values():
                for record in records:
                    envelope = codec.decode(record.value)
                    event = envelope.payload
                    assert isinstance(event, MessageStored | MessageFannedOut | MessageFannedOutBatch)
                    read.message_ids.append(event.message.message_id)
                    read.envelope_ids.append(envelope.id)
                    read.records += 1
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        assert not remaining, f"could not read {topic} to its end"
        return read
    finally:
        await consumer.stop()


async def assert_exactly_once(settings: Settings, codec: AvroEnvelopeCodec, sent: Sent) -> None:
    """``read_committed``: each message once in message-stored and its exact inbox record count,
    counted with repeats; markers present (transactions were used); the group's committed input
    offsets are at the end of chat.personal-chat (committed by the transactions: the consumer
    never commits)."""
    catalog = TopicCatalog(settings)
    stored_topic, inbox_topic = catalog.resolve(MESSAGE_STORED).name, catalog.resolve(INBOX).name
    expected_inbox = sent.inbox_records(catalog.resolve(INBOX).partitions)

    async def complete() -> bool:  # store rows are written before their transaction commits
        stored = await read_all(settings, codec, stored_topic, "read_committed")
        inbox = await read_all(settings, codec, inbox_topic, "read_committed")
        return stored.records >= len(sent.pairs) and inbox.records >= expected_inbox

    await wait_until(complete, timeout=60, what="every output committed")
    await asyncio.sleep(1.0)  # a late duplicate would show up now
    stored = await read_all(settings, codec, stored_topic, "read_committed")
    assert stored.records == len(sent.pairs), _repeats(stored.message_ids)
    assert Counter(stored.message_ids) == Counter(set(sent.pairs))
    assert len(set(stored.envelope_ids)) == stored.records
    inbox = await read_all(settings, codec, inbox_topic, "read_committed")
    assert inbox.records == expected_inbox, _repeats(inbox.envelope_ids)
    assert len(set(inbox.envelope_ids)) == inbox.records
    assert set(inbox.message_ids) == set(sent.pairs)
    for read in (stored, inbox):  # every transaction leaves a commit marker at an offset of its own
        assert read.end_offsets > read.records, "no transaction markers: transactions were not used"
    # the offsets commit with the outputs, but the group shows them only once the transaction's
    # marker reached __consumer_offsets, which may come after the outputs' markers
    await wait_until(lambda: _no_lag(settings), timeout=10, what="the group's offsets at the end of the input")


async def _no_lag(settings: Settings) -> bool:
    return await group_lag(settings) == 0


def _repeats(ids: list[str]) -> str:
    twice = [i for i, n in Counter(ids).items() if n > 1]
    return f"{len(twice)} ids seen more than once, e.g. {twice[:3]}"


async def group_lag(settings: Settings) -> int:
    """Records of chat.personal-chat the workers' group has not committed (the edges' own
    back-pressure figure, ``chat_events.kafka.lag``)."""
    topic = TopicCatalog(settings).resolve(PERSONAL_CHAT)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    await consumer.start()
    try:
        lag = await lag_by_topic(admin, consumer, settings.worker_app_id, {topic.name: topic.partitions})
        return sum(lag.values())
    finally:
        await consumer.stop()
        await admin.close()


@pytest.fixture
async def publisher(
    real_kafka: KafkaTarget, cassandra: dict[str, object], tmp_path: Path
) -> AsyncIterator[tuple[Settings, EventPublisher]]:
    settings = txn_settings(
        real_kafka, tmp_path, cassandra, worker_session_timeout_s=6.0, worker_rebalance_timeout_s=3.0
    )
    await ensure_topics(settings, real_kafka)
    async with EventPublisher(settings, real_kafka, build_codec(settings)) as publisher:
        yield settings, publisher


async def test_pipeline_outputs_are_committed_exactly_once(
    publisher: tuple[Settings, EventPublisher], tmp_path: Path
) -> None:
    settings, pub = publisher
    users = [f"u{i}-{uuid.uuid4().hex[:4]}" for i in range(20)]
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    async with open_store(settings) as store:
        try:
            sent = await send_pairs(pub, 400, users)
            await wait_until(lambda: _rows(store, users, 800), timeout=60, what="every inbox entry")
            await assert_exactly_once(settings, build_codec(settings), sent)
        finally:
            worker.stop()
        await check_invariants(store, sent.pairs)


async def test_worker_killed_mid_stream_outputs_stay_exactly_once(
    publisher: tuple[Settings, EventPublisher], tmp_path: Path
) -> None:
    settings, pub = publisher
    settings = settings.model_copy(update={"worker_batch_max": 50})  # many transactions: some open at the kill
    codec = build_codec(settings)
    users = [f"k{i}-{uuid.uuid4().hex[:4]}" for i in range(40)]
    n = 3000
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    async with open_store(settings) as store:
        try:
            sending = asyncio.ensure_future(send_pairs(pub, n, users, chunk=100))
            await wait_until(lambda: _rows(store, users, n // 2), timeout=120, what="a quarter of the run")
            worker.kill9()
            killed_at = await inbox_count(store, users)
            sent = await sending
            assert killed_at < 2 * n, "the kill must land mid-run"
            worker.start()  # its producers fence the killed one's ids and abort its open transactions
            restarted = time.monotonic()
            await wait_until(
                lambda: _rows(store, users, 2 * n), timeout=180, what="every inbox entry after the restart"
            )
            await assert_exactly_once(settings, codec, sent)
            # the killed worker's open transactions were aborted when the new one started, not when
            # they timed out: read_committed readers were held up for far less than the timeout
            took = time.monotonic() - restarted
            assert took < TRANSACTION_TIMEOUT_MS / 1000 / 2, f"outputs complete {took:.0f}s after the restart"
        finally:
            worker.stop()
        await check_invariants(store, sent.pairs)
    catalog = TopicCatalog(settings)
    for spec in (MESSAGE_STORED, INBOX):  # read_uncommitted sees at least as much, aborted records included
        committed = await read_all(settings, codec, catalog.resolve(spec).name, "read_committed")
        uncommitted = await read_all(settings, codec, catalog.resolve(spec).name, "read_uncommitted")
        assert uncommitted.records >= committed.records
        assert set(uncommitted.envelope_ids) == set(committed.envelope_ids)  # repeats only, never other outputs


async def _rows(store: MessageStore, users: list[str], n: int) -> bool:
    return await inbox_count(store, users) >= n


async def test_partitions_handed_over_between_workers_stay_exactly_once(
    publisher: tuple[Settings, EventPublisher], tmp_path: Path
) -> None:
    """Rebalances while messages flow: a second worker joins (half the partitions move to it,
    the rest stay and are re-sought), then the first one stops (SIGTERM: it drains its
    transactions and leaves). Each handover drains, fences and re-reads the committed offsets."""
    settings, pub = publisher
    settings = settings.model_copy(update={"worker_batch_max": 50})
    codec = build_codec(settings)
    users = [f"h{i}-{uuid.uuid4().hex[:4]}" for i in range(40)]
    n = 3000
    first = WorkerProcess(settings, tmp_path / "first.log")
    second = WorkerProcess(settings, tmp_path / "second.log")
    first.start()
    async with open_store(settings) as store:
        try:
            sending = asyncio.ensure_future(send_pairs(pub, n, users, chunk=50))
            await wait_until(lambda: _rows(store, users, n // 2), timeout=120, what="a quarter of the run")
            second.start()
            await wait_until(lambda: _rows(store, users, n), timeout=120, what="half of the run")
            assert first.terminate() == 0
            sent = await sending
            await wait_until(lambda: _rows(store, users, 2 * n), timeout=180, what="every inbox entry")
            await assert_exactly_once(settings, codec, sent)
        finally:
            second.stop()
            first.stop()
        await check_invariants(store, sent.pairs)
