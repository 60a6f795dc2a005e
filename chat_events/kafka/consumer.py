"""Reading envelopes back: a plain aiokafka consumer that decodes every record.

Used by ``chat-events consume`` and by tests. The stream processors do not use it: the native
worker has one group consumer all its stage runners share (``chat_events/streams/app.py``), the
Faust engine the consumer of its Faust app (``chat_events/streams/faust_app.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError

from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.errors import BrokerUnavailableError, ConfigurationError, EventDecodeError
from chat_events.events.types import Envelope
from chat_events.kafka.connection import KafkaTarget, consumer_options
from chat_events.settings import Settings


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    """One record: where it was, its key, and its envelope (or why it could not be decoded)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    envelope: Envelope | None
    error: EventDecodeError | None


GROUP_SESSION_TIMEOUT_MS = 10_000
GROUP_REBALANCE_TIMEOUT_MS = 5000
"""Rebalance timeout of a ``group_id`` consumer (a brief join: it is one reader, not a worker).
A join can take a session timeout and a rebalance timeout, or more: a member that left without
the broker noticing (the embedded broker keeps one for its session timeout) is waited for."""
METADATA_RETRY_S = 0.2


async def consume_envelopes(
    settings: Settings,
    target: KafkaTarget,
    codec: AvroEnvelopeCodec,
    topic: str,
    *,
    from_beginning: bool = False,
    max_records: int | None = None,
    idle_timeout_s: float | None = None,
    group_id: str | None = None,
    event_names: Collection[str] | None = None,
) -> AsyncIterator[ConsumedRecord]:
    """Yield decoded records of ``topic`` (all partitions). Stops after ``max_records`` or when
    no record arrived for ``idle_timeout_s``. Without ``group_id`` no offsets are committed.

    With ``event_names`` only envelopes of those events are yielded (and undecodable records,
    which cannot be told apart); the others are skipped: they count neither for ``max_records``
    nor as an arrival for ``idle_timeout_s`` (an edge's heartbeats every few seconds do not
    keep a reader of ``userConnected`` alive).

    Without a group the partitions are assigned by hand, once the broker's metadata lists them
    (see :func:`topic_partitions`), and read from their beginning or their end. With a group the
    partitions come from the group's assignment: a partition starts at the group's committed
    offset, or (none committed) at its beginning or end as ``from_beginning`` says; the idle
    clock starts once the first assignment arrived. Reaching the broker, the topic's metadata
    and (with a group) the first assignment are all bounded by ``CHAT_KAFKA_CONNECT_TIMEOUT_S``
    (plus, for the assignment, twice the group's session and rebalance timeouts)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.kafka_connect_timeout_s
    options = consumer_options(settings, target)
    if group_id is not None:  # a JoinGroup is answered when the rebalance completes
        options["request_timeout_ms"] = max(options["request_timeout_ms"], GROUP_REBALANCE_TIMEOUT_MS + 5000)
    consumer = AIOKafkaConsumer(
        **options,
        group_id=group_id,
        enable_auto_commit=group_id is not None,
        auto_offset_reset="earliest" if from_beginning else "latest",
        **(
            {"session_timeout_ms": GROUP_SESSION_TIMEOUT_MS, "rebalance_timeout_ms": GROUP_REBALANCE_TIMEOUT_MS}
            if group_id is not None
            else {}
        ),
    )
    try:
        await asyncio.wait_for(consumer.start(), settings.kafka_connect_timeout_s)
    except (KafkaConnectionError, KafkaError, TimeoutError, OSError) as exc:
        await consumer.stop()
        raise BrokerUnavailableError(f"cannot reach Kafka at {target.bootstrap_servers}: {exc}") from exc
    try:
        if group_id is None:
            assigned = await topic_partitions(consumer, topic, target, deadline - loop.time())
            consumer.assign(assigned)
            if from_beginning:
                await consumer.seek_to_beginning(*assigned)
            else:
                await consumer.seek_to_end(*assigned)
        else:
            listener = _FirstAssignment()
            consumer.subscribe([topic], listener=listener)
            join_s = (
                max(0.0, deadline - loop.time()) + 2 * (GROUP_SESSION_TIMEOUT_MS + GROUP_REBALANCE_TIMEOUT_MS) / 1000
            )
            try:
                await asyncio.wait_for(listener.assigned.wait(), join_s)
            except TimeoutError:
                raise BrokerUnavailableError(
                    f"consumer group {group_id!r} got no partition assignment from Kafka at "
                    f"{target.bootstrap_servers} within {join_s:.0f}s"
                ) from None
        seen = 0
        last_arrival = loop.time()
        while max_records is None or seen < max_records:
            wait_s = 3600.0 if idle_timeout_s is None else idle_timeout_s - (loop.time() - last_arrival)
            if wait_s <= 0:
                return
            batches = await consumer.getmany(timeout_ms=max(1, int(wait_s * 1000)))
            for records in batches.values():
                for record in records:
                    try:
                        envelope, error = codec.decode(record.value), None
                    except EventDecodeError as exc:
                        envelope, error = None, exc
                    if not wanted(envelope, event_names):
                        continue
                    last_arrival = loop.time()
                    yield ConsumedRecord(record.topic, record.partition, record.offset, record.key, envelope, error)
                    seen += 1
                    if max_records is not None and seen >= max_records:
                        return
    finally:
        await consumer.stop()


def wanted(envelope: Envelope | None, event_names: Collection[str] | None) -> bool:
    """Whether a consumed record passes the ``event_names`` filter (pure): every record without
    a filter; with one, the envelopes of those events and the undecodable records (None)."""
    return event_names is None or envelope is None or envelope.name in event_names


async def topic_partitions(
    consumer: AIOKafkaConsumer, topic: str, target: KafkaTarget, timeout_s: float
) -> list[TopicPartition]:
    """Every partition of ``topic``, once the broker's metadata lists them; asked again until
    ``timeout_s`` has passed. A started consumer may know nothing of the topic yet: aiokafka's
    bootstrap asks for no topics (Tansu answers with all of them, Apache Kafka with none), and a
    topic created a moment ago may be listed without partitions until its leaders are elected.
    Each ask is for *all* topics: asking for this one by name would make a broker with
    ``auto.create.topics.enable`` create it with its own partition count."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            cluster = await consumer._client.fetch_all_metadata()
        except KafkaError as exc:
            raise BrokerUnavailableError(
                f"cannot read metadata from Kafka at {target.bootstrap_servers}: {exc}"
            ) from exc
        partitions = cluster.partitions_for_topic(topic)
        if partitions:
            return [TopicPartition(topic, p) for p in sorted(partitions)]
        if loop.time() >= deadline:
            raise ConfigurationError(
                f"topic {topic!r} has no partitions on Kafka at {target.bootstrap_servers} after "
                f"{timeout_s:.0f}s: it does not exist (create it with `chat-events topics create`) "
                "or has no leader yet"
            )
        await asyncio.sleep(min(METADATA_RETRY_S, max(0.0, deadline - loop.time())))


class _FirstAssignment(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Sets ``assigned`` when the group's first assignment (possibly empty) arrives."""

    def __init__(self) -> None:
        self.assigned = asyncio.Event()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        pass

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.assigned.set()
