"""The aiokafka producer, configured for durability: acks=all, bounded time, idempotence where
the broker supports it. Every chat-events producer is built here.

Metadata tracking: aiokafka's client refreshes metadata for the set of topics it *tracks* and
replaces its whole partition map with the answer. A topic is tracked only when a send finds it
missing from the metadata; a topic already known (from the bootstrap answer, or a full refresh
made while nothing was tracked) is sent to without ever being tracked. Tansu answers the
bootstrap ``Metadata(topics=[])`` with *every* topic, so a fresh producer knows all existing
topics and tracks none; its first send to a topic created later (an edge's ``chat.edge.<id>``)
tracks that topic alone, the refresh for it drops every other topic from the map, and a batch
already queued for one of them has no leader: the sender re-requests metadata in a tight loop
(thousands of requests) until the batch expires after ``request_timeout_ms`` with
``NotLeaderForPartitionError``. :class:`TrackingProducer` tracks every topic before its first
record is queued, so a refresh always covers every topic with records in flight.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from chat_events.errors import BrokerUnavailableError
from chat_events.kafka.connection import KafkaTarget, client_options
from chat_events.producers.partitioner import CachedMurmur2Partitioner
from chat_events.settings import Settings


class TrackingProducer(AIOKafkaProducer):  # type: ignore[misc]  # aiokafka is untyped
    """An :class:`AIOKafkaProducer` whose client tracks, for metadata refreshes, every topic this
    producer has sent to (see the module docstring). Costs one set lookup per send."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._tracked_topics: set[str] = set()

    def _track(self, topic: str) -> None:
        if topic not in self._tracked_topics:
            self._tracked_topics.add(topic)
            self.client.add_topic(topic)  # before the record is queued; refreshes include it

    def send(self, topic: str, *args: Any, **kwargs: Any) -> Any:
        self._track(topic)
        return super().send(topic, *args, **kwargs)

    def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        self._track(topic)
        return super().send_batch(batch, topic, partition=partition)


def build_producer(settings: Settings, target: KafkaTarget) -> AIOKafkaProducer:
    """A producer that acknowledges only after every in-sync replica has the record."""
    return TrackingProducer(
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
