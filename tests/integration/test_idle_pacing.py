"""Idle pacing on the embedded broker (the only broker it applies to): a consumer with nothing to
read stops fetching, a producer of ours wakes it, and a producer that does not ring is still read
by the probe. Real sockets: the embedded broker, loopback UDP between producer and consumer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from chat_events.codec import build_codec
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget, consumer_options
from chat_events.kafka.embedded import EmbeddedBroker
from chat_events.kafka.idle_pacer import (
    KAFKA_PREFETCH_BACKOFF_S,
    PREFETCH_BACKOFF_S,
    Mode,
    PacedConsumer,
    build_consumer,
)
from chat_events.producers import EventPublisher
from chat_events.settings import Settings
from chat_events.topics import USER_EVENTS, TopicCatalog

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def embedded() -> AsyncIterator[KafkaTarget]:
    broker = EmbeddedBroker(0)
    broker.start()
    try:
        yield KafkaTarget(broker.bootstrap_servers, embedded=True)
    finally:
        broker.stop()


def settings_for(target: KafkaTarget, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "kafka_bootstrap_servers": target.bootstrap_servers,
        "kafka_idempotence": "off",
        "topic_prefix": f"t{uuid.uuid4().hex[:10]}.",
        "topic_partitions": 1,
        "data_dir": tmp_path / "data",
        "kafka_idle_pause_ms": 200,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


async def paused_consumer(settings: Settings, target: KafkaTarget, topic: str) -> PacedConsumer:
    consumer = build_consumer(settings, target, **consumer_options(settings, target), auto_offset_reset="earliest")
    assert isinstance(consumer, PacedConsumer)
    await consumer.start()
    consumer.assign([TopicPartition(topic, 0)])
    await consumer.seek_to_beginning(TopicPartition(topic, 0))
    async with asyncio.timeout(20):
        while consumer.pacer.mode is not Mode.PAUSED:
            await consumer.getmany(timeout_ms=50)
    return consumer


async def records_until(consumer: PacedConsumer, count: int, timeout_s: float) -> list[bytes]:
    got: list[bytes] = []
    async with asyncio.timeout(timeout_s):
        while len(got) < count:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                got.extend(record.value for record in records)
    return got


async def raw_send(target: KafkaTarget, topic: str, value: bytes) -> None:
    """A producer that is not ours: it does not ring."""
    producer = AIOKafkaProducer(bootstrap_servers=target.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, partition=0)
    finally:
        await producer.stop()


async def test_a_paused_consumer_does_not_fetch_until_our_producer_rings(embedded: KafkaTarget, tmp_path: Path) -> None:
    settings = settings_for(embedded, tmp_path, kafka_idle_probe_ms=600_000)  # no probe in this test
    await ensure_topics(settings, embedded)
    topic = TopicCatalog(settings).resolve(USER_EVENTS).name
    consumer = await paused_consumer(settings, embedded, topic)
    try:
        await raw_send(embedded, topic, b"not rung")
        with pytest.raises(TimeoutError):  # paused: nothing fetches it (the probe is 10 minutes away)
            await records_until(consumer, 1, 1.5)
        assert consumer.pacer.mode is Mode.PAUSED
        async with EventPublisher(settings, embedded, build_codec(settings)) as publisher:
            await publisher.publish_user_connected(user_id="alice", session_id=str(uuid.uuid4()))
        got = await records_until(consumer, 2, 20)  # the ring woke it: both records come
        assert got[0] == b"not rung" and len(got) == 2
        assert consumer.pacer.mode is Mode.FETCHING
    finally:
        await consumer.stop()


async def test_a_paused_consumer_still_reads_producers_that_do_not_ring(embedded: KafkaTarget, tmp_path: Path) -> None:
    settings = settings_for(embedded, tmp_path, kafka_idle_probe_ms=300)
    await ensure_topics(settings, embedded)
    topic = TopicCatalog(settings).resolve(USER_EVENTS).name
    consumer = await paused_consumer(settings, embedded, topic)
    try:
        await raw_send(embedded, topic, b"found by a probe")
        assert await records_until(consumer, 1, 20) == [b"found by a probe"]
    finally:
        await consumer.stop()


async def test_real_kafka_consumers_are_not_paced(tmp_path: Path) -> None:
    target = KafkaTarget("127.0.0.1:9", embedded=False)
    settings = settings_for(target, tmp_path)
    consumer = build_consumer(settings, target, **consumer_options(settings, target))
    assert not isinstance(consumer, PacedConsumer)
    await consumer.stop()


async def test_our_consumers_do_not_hold_back_fetches_for_records_waiting_to_be_taken(
    embedded: KafkaTarget, tmp_path: Path
) -> None:
    """aiokafka's fetcher holds back every fetch to a broker for up to its prefetch backoff while
    one partition's records wait to be taken; with one consumer for every stage, a busy stage
    delayed the others (``python -m benchmarks.bench_fetch``: hop p50 57 -> 6 ms on the embedded
    broker). The attribute is aiokafka's own (a renamed one would make the override a no-op)."""
    settings = settings_for(embedded, tmp_path)
    await ensure_topics(settings, embedded)
    tp = TopicPartition(TopicCatalog(settings).resolve(USER_EVENTS).name, 0)
    plain = AIOKafkaConsumer(bootstrap_servers=embedded.bootstrap_servers)
    await plain.start()
    plain.assign([tp])
    await plain.getmany(timeout_ms=50)  # stopped at once, aiokafka's coordinator raises CancelledError
    try:
        assert plain._fetcher._prefetch_backoff == 0.1  # what aiokafka does by default
    finally:
        await plain.stop()
    expected = {True: PREFETCH_BACKOFF_S, False: KAFKA_PREFETCH_BACKOFF_S}
    assert expected == {True: 0, False: 0.1}  # on Kafka a fetch waits 500 ms: keep aiokafka's (see it)
    for target in (embedded, KafkaTarget(embedded.bootstrap_servers, embedded=False)):
        ours = build_consumer(settings, target, **consumer_options(settings, target))
        await ours.start()
        ours.assign([tp])
        await ours.getmany(timeout_ms=50)
        try:
            assert ours._fetcher._prefetch_backoff == expected[target.embedded]
        finally:
            await ours.stop()
