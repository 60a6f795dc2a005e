"""``consume_envelopes`` against a fake consumer that behaves like aiokafka on Apache Kafka:
the bootstrap metadata lists no topics, a new topic's partitions show up a little later, a
seek with no partitions assigned fails, and a group's assignment arrives after a join delay
(``getmany`` blocks until it has). The real consumer is exercised by the integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition

import chat_events.kafka.consumer as consumer_module
from chat_events.codec import build_codec
from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.errors import BrokerUnavailableError, ConfigurationError
from chat_events.events.factory import new_envelope
from chat_events.events.types import UserConnected
from chat_events.kafka.connection import KafkaTarget
from chat_events.kafka.consumer import ConsumedRecord, consume_envelopes
from chat_events.settings import Settings

TOPIC = "chat.user-events"
TARGET = KafkaTarget("kafka:9092", embedded=False)


@dataclass(frozen=True)
class Rec:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes


class FakeCluster:
    def __init__(self, partitions: dict[str, set[int]]) -> None:
        self._partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self._partitions.get(topic)


class FakeClient:
    def __init__(self, answers: list[dict[str, set[int]]]) -> None:
        self.answers = answers
        self.asked = 0

    async def fetch_all_metadata(self) -> FakeCluster:
        answer = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        return FakeCluster(answer)


class FakeKafkaConsumer:
    """What ``consume_envelopes`` uses of ``AIOKafkaConsumer``, with Apache Kafka's timing."""

    metadata: list[dict[str, set[int]]] = [{}]
    join_delay_s = 0.0
    records: list[Rec] = []

    def __init__(self, **options: Any) -> None:
        self.options = options
        self._client = FakeClient(self.metadata)
        self._assigned: set[TopicPartition] = set()
        self._subscribed = False
        self._joined = asyncio.Event()
        self._pending = list(self.records)
        self.seeks: list[tuple[str, tuple[TopicPartition, ...]]] = []
        INSTANCES.append(self)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return None  # the bootstrap answer (Metadata(topics=[])) listed no topics

    async def topics(self) -> set[str]:  # a fresh full fetch, but the consumer's map stays as it was
        return set(self.metadata[0])

    def assign(self, partitions: list[TopicPartition]) -> None:
        self._assigned = set(partitions)

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        self._seek("beginning", partitions)

    async def seek_to_end(self, *partitions: TopicPartition) -> None:
        self._seek("end", partitions)

    def _seek(self, where: str, partitions: tuple[TopicPartition, ...]) -> None:
        if not partitions:
            partitions = tuple(self._assigned)
            assert partitions, "No partitions are currently assigned"  # aiokafka's own check
        self.seeks.append((where, partitions))

    def subscribe(self, topics: list[str], listener: Any = None) -> None:
        self._subscribed = True

        async def join() -> None:
            await asyncio.sleep(self.join_delay_s)
            self._assigned = {TopicPartition(t, 0) for t in topics}
            if listener is not None:
                await listener.on_partitions_assigned(set(self._assigned))
            self._joined.set()

        self._join = asyncio.ensure_future(join())

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int) -> dict[TopicPartition, list[Rec]]:
        if self._subscribed:
            await self._joined.wait()  # aiokafka: a reassignment in progress blocks getmany
        ready = [r for r in self._pending if TopicPartition(r.topic, r.partition) in self._assigned]
        if ready:
            self._pending = [r for r in self._pending if r not in ready]
            return {TopicPartition(TOPIC, 0): ready}
        await asyncio.sleep(timeout_ms / 1000)
        return {}


INSTANCES: list[FakeKafkaConsumer] = []


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeKafkaConsumer]:
    class Fake(FakeKafkaConsumer):
        pass

    INSTANCES.clear()
    monkeypatch.setattr(consumer_module, "AIOKafkaConsumer", Fake)
    return Fake


@pytest.fixture(scope="module")
def codec() -> AvroEnvelopeCodec:
    return build_codec(Settings())


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"kafka_bootstrap_servers": TARGET.bootstrap_servers, "data_dir": tmp_path}
    values.update(overrides)
    return Settings(**values)


def record(codec: AvroEnvelopeCodec, offset: int) -> Rec:
    envelope = new_envelope(UserConnected(edge_id=f"e{offset}"), user_id="alice", session_id=f"s{offset}")
    return Rec(TOPIC, 0, offset, b"alice", codec.encode(envelope))


async def collect(records: AsyncIterator[ConsumedRecord]) -> list[ConsumedRecord]:
    return [r async for r in records]


def consume(s: Settings, codec: AvroEnvelopeCodec, **kwargs: Any) -> AsyncIterator[ConsumedRecord]:
    return consume_envelopes(s, TARGET, codec, TOPIC, **kwargs)


@pytest.mark.parametrize(("from_beginning", "where"), [(True, "beginning"), (False, "end")])
async def test_without_a_group_it_waits_for_the_topic_in_the_metadata(
    fake: type[FakeKafkaConsumer], codec: AvroEnvelopeCodec, tmp_path: Path, from_beginning: bool, where: str
) -> None:
    fake.metadata = [{}, {"other": {0}}, {TOPIC: {1, 0}}]  # the topic appears on the third ask
    fake.records = [record(codec, 0)]
    out = await collect(consume(settings(tmp_path), codec, from_beginning=from_beginning, idle_timeout_s=0.05))
    assert [r.offset for r in out] == [0]
    (consumer,) = INSTANCES
    assert consumer._client.asked == 3
    assert consumer.seeks == [(where, (TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)))]


async def test_a_topic_that_never_appears_is_a_clear_error_within_the_connect_timeout(
    fake: type[FakeKafkaConsumer], codec: AvroEnvelopeCodec, tmp_path: Path
) -> None:
    fake.metadata = [{"other": {0}}]
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ConfigurationError, match=f"topic '{TOPIC}' has no partitions on Kafka at kafka:9092") as caught:
        await collect(consume(settings(tmp_path, kafka_connect_timeout_s=0.5), codec, idle_timeout_s=0.05))
    assert 0.5 <= loop.time() - started < 2.0
    assert "chat-events topics create" in str(caught.value)


async def test_with_a_group_positions_come_from_the_group_after_the_join(
    fake: type[FakeKafkaConsumer], codec: AvroEnvelopeCodec, tmp_path: Path
) -> None:
    """Apache Kafka holds a new group's first join (group.initial.rebalance.delay.ms, 3 s by
    default), longer than the idle timeout here: nothing is sought before the assignment, and
    the JoinGroup request may take the whole rebalance timeout."""
    fake.join_delay_s = 0.3
    fake.records = [record(codec, 0), record(codec, 1)]
    s = settings(tmp_path, kafka_request_timeout_ms=3000)
    out = await collect(consume(s, codec, group_id="readers", from_beginning=True, idle_timeout_s=0.1))
    assert [r.offset for r in out] == [0, 1]
    (consumer,) = INSTANCES
    assert consumer.seeks == []  # the group's committed offsets, else auto_offset_reset
    assert consumer.options["auto_offset_reset"] == "earliest" and consumer.options["enable_auto_commit"]
    assert consumer.options["request_timeout_ms"] >= consumer.options["rebalance_timeout_ms"] + 5000


async def test_a_group_that_never_gets_an_assignment_is_an_error_not_a_hang(
    fake: type[FakeKafkaConsumer], codec: AvroEnvelopeCodec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumer_module, "GROUP_REBALANCE_TIMEOUT_MS", 100)
    monkeypatch.setattr(consumer_module, "GROUP_SESSION_TIMEOUT_MS", 100)
    fake.join_delay_s = 3600
    s = settings(tmp_path, kafka_connect_timeout_s=0.3)
    with pytest.raises(BrokerUnavailableError, match="group 'readers' got no partition assignment"):
        await asyncio.wait_for(collect(consume(s, codec, group_id="readers", idle_timeout_s=0.1)), 5)
    INSTANCES[0]._join.cancel()
