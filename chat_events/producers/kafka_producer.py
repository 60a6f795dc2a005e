"""The aiokafka producer, configured for durability: acks=all, bounded time, idempotence where
the broker supports it. Every chat-events producer is built here."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from chat_events.errors import BrokerUnavailableError
from chat_events.kafka.connection import KafkaTarget, client_options
from chat_events.producers.partitioner import CachedMurmur2Partitioner
from chat_events.settings import Settings


def build_producer(settings: Settings, target: KafkaTarget) -> AIOKafkaProducer:
    """A producer that acknowledges only after every in-sync replica has the record."""
    return AIOKafkaProducer(
        **client_options(settings, target),
        acks="all",
        enable_idempotence=target.idempotence(settings),
        linger_ms=settings.kafka_linger_ms,
        max_batch_size=settings.kafka_max_batch_bytes,
        compression_type=None if settings.kafka_compression == "none" else settings.kafka_compression,
        retry_backoff_ms=100,
        partitioner=CachedMurmur2Partitioner(),
    )


async def start_producer(producer: AIOKafkaProducer, settings: Settings, target: KafkaTarget) -> None:
    """Start ``producer`` or raise :class:`BrokerUnavailableError` within the connect timeout."""
    try:
        await asyncio.wait_for(producer.start(), settings.kafka_connect_timeout_s)
    except (KafkaConnectionError, KafkaError, TimeoutError, OSError) as exc:
        await producer.stop()
        reason = "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
        raise BrokerUnavailableError(
            f"cannot reach Kafka at {target.bootstrap_servers} within {settings.kafka_connect_timeout_s:g}s: {reason}"
        ) from exc
