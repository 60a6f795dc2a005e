"""Reading envelopes back: a plain aiokafka consumer that decodes every record.

Used by ``chat-events consume`` and by tests; the stream processors use Faust instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError

from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.errors import BrokerUnavailableError, EventDecodeError
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
) -> AsyncIterator[ConsumedRecord]:
    """Yield decoded records of ``topic`` (all partitions). Stops after ``max_records`` or when
    nothing arrived for ``idle_timeout_s``. Without ``group_id`` no offsets are committed."""
    consumer = AIOKafkaConsumer(
        **consumer_options(settings, target),
        group_id=group_id,
        enable_auto_commit=group_id is not None,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    try:
        await asyncio.wait_for(consumer.start(), settings.kafka_connect_timeout_s)
    except (KafkaConnectionError, KafkaError, TimeoutError, OSError) as exc:
        await consumer.stop()
        raise BrokerUnavailableError(f"cannot reach Kafka at {target.bootstrap_servers}: {exc}") from exc
    try:
        if group_id is None:
            await consumer.topics()  # refreshes metadata
            partitions = consumer.partitions_for_topic(topic) or set()
            assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            if from_beginning:
                await consumer.seek_to_beginning(*assigned)
            else:
                await consumer.seek_to_end(*assigned)
        else:
            consumer.subscribe([topic])
        seen = 0
        while max_records is None or seen < max_records:
            batches = await consumer.getmany(timeout_ms=int((idle_timeout_s or 3600) * 1000))
            if not batches:
                if idle_timeout_s is not None:
                    return
                continue
            for records in batches.values():
                for record in records:
                    try:
                        envelope, error = codec.decode(record.value), None
                    except EventDecodeError as exc:
                        envelope, error = None, exc
                    yield ConsumedRecord(record.topic, record.partition, record.offset, record.key, envelope, error)
                    seen += 1
                    if max_records is not None and seen >= max_records:
                        return
    finally:
        await consumer.stop()
