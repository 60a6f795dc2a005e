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
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from chat_events.errors import BrokerUnavailableError, IdempotenceUnsupportedError
from chat_events.kafka.connection import KafkaTarget, client_options
from chat_events.kafka.doorbell import Ringer, registry_dir
from chat_events.kafka.idle_pacer import pacing_policy
from chat_events.producers.partitioner import CachedMurmur2Partitioner
from chat_events.settings import Settings

TRANSACTION_TIMEOUT_MS = 60_000
"""Longest a transaction may stay open before the broker aborts it (and fences its producer)."""
TRANSACTION_RETRY_BACKOFF_MS = 10
"""Backoff of a transactional producer's retries. The broker answers the first request of a
transaction that follows a commit with CONCURRENT_TRANSACTIONS until the previous one's markers
are written (a few ms); the default 100 ms wait would dominate every transaction."""


class TrackingProducer(AIOKafkaProducer):  # type: ignore[misc]  # aiokafka is untyped
    """An :class:`AIOKafkaProducer` whose client tracks, for metadata refreshes, every topic this
    producer has sent to (see the module docstring). Costs one set lookup per send. With a
    ``ringer`` (the embedded broker) each send also wakes the broker's idle local consumers
    (:mod:`chat_events.kafka.doorbell`; rate-limited, a clock read per send)."""

    def __init__(self, *, ringer: Ringer | None = None, **options: Any) -> None:
        super().__init__(**options)
        self._tracked_topics: set[str] = set()
        self._ringer = ringer

    def _track(self, topic: str) -> None:
        if topic not in self._tracked_topics:
            self._tracked_topics.add(topic)
            self.client.add_topic(topic)  # before the record is queued; refreshes include it

    def send(self, topic: str, *args: Any, **kwargs: Any) -> Any:
        self._track(topic)
        if self._ringer is not None:
            self._ringer.ring(topic)
        return super().send(topic, *args, **kwargs)

    def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        self._track(topic)
        if self._ringer is not None:
            self._ringer.ring(topic)
        return super().send_batch(batch, topic, partition=partition)

    async def stop(self) -> None:
        await super().stop()
        if self._ringer is not None:
            self._ringer.close()


def build_producer(settings: Settings, target: KafkaTarget, *, transactional_id: str | None = None) -> AIOKafkaProducer:
    """A producer that acknowledges only after every in-sync replica has the record. With a
    ``transactional_id`` it is transactional (hence idempotent): ``start()`` registers that id
    with the broker (InitProducerId), fencing any older producer that used it."""
    extra: dict[str, Any] = {"retry_backoff_ms": 100}
    if transactional_id is not None:
        extra = {
            "transactional_id": transactional_id,
            "transaction_timeout_ms": TRANSACTION_TIMEOUT_MS,
            "retry_backoff_ms": TRANSACTION_RETRY_BACKOFF_MS,
        }
    ringer = Ringer(registry_dir(target.bootstrap_servers)) if pacing_policy(settings, target) else None
    return TrackingProducer(
        ringer=ringer,
        **client_options(settings, target),
        **extra,
        acks="all",
        enable_idempotence=transactional_id is not None or target.idempotence(settings),
        linger_ms=settings.kafka_linger_ms,
        max_batch_size=settings.kafka_max_batch_bytes,
        compression_type=None if settings.kafka_compression == "none" else settings.kafka_compression,
        partitioner=CachedMurmur2Partitioner(),
    )


async def start_producer(producer: AIOKafkaProducer, settings: Settings, target: KafkaTarget) -> None:
    """Start ``producer`` within the connect timeout, or raise :class:`BrokerUnavailableError`
    (no broker answered) or :class:`IdempotenceUnsupportedError` (the broker answered, but an
    idempotent producer got no producer id from it)."""
    try:
        with _init_pid_errors_silenced():  # reported as our own error below, once
            await asyncio.wait_for(producer.start(), settings.kafka_connect_timeout_s)
    except (KafkaConnectionError, KafkaError, TimeoutError, OSError) as exc:
        reached = bool(producer.client.cluster.brokers())  # bootstrap done: the broker answered
        await producer.stop()
        raise start_failure(exc, settings, target, reached=reached, idempotent=target.idempotence(settings)) from exc


async def start_transactional(producer: AIOKafkaProducer, timeout_s: float) -> None:
    """Start a transactional producer (InitProducerId for its id) within ``timeout_s``; errors
    are raised as aiokafka's, for the caller's policy, without aiokafka's own ERROR line."""
    with _init_pid_errors_silenced():
        await asyncio.wait_for(producer.start(), timeout_s)


def start_failure(
    exc: BaseException, settings: Settings, target: KafkaTarget, *, reached: bool, idempotent: bool
) -> BrokerUnavailableError | IdempotenceUnsupportedError:
    """What a failed ``producer.start()`` means. aiokafka's start is bootstrap (metadata), then,
    for an idempotent producer, InitProducerId until it succeeds: a broker that answered the
    bootstrap and then refused (UnknownError from Tansu, UnsupportedVersionError from Kafka < 0.11)
    or never granted the id is reachable, and "cannot reach Kafka" would send the user looking
    in the wrong place."""
    reason = "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
    where, within = target.bootstrap_servers, f"{settings.kafka_connect_timeout_s:g}s"
    if reached and idempotent and isinstance(exc, TimeoutError):  # (before OSError: it is one)
        return IdempotenceUnsupportedError(
            f"Kafka at {where} answered but granted no idempotent producer id within {within} "
            "(InitProducerId timed out): the broker may not support idempotent producers; "
            "set CHAT_KAFKA_IDEMPOTENCE=off for it"
        )
    if reached and idempotent and not isinstance(exc, KafkaConnectionError | OSError):
        return IdempotenceUnsupportedError(
            f"Kafka at {where} does not support idempotent producers (InitProducerId failed: "
            f"{type(exc).__name__}); set CHAT_KAFKA_IDEMPOTENCE=off for this broker"
        )
    return BrokerUnavailableError(f"cannot reach Kafka at {where} within {within}: {reason}")


class _DropInitPidErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Unexpected error during InitProducerIdRequest")


@contextlib.contextmanager
def _init_pid_errors_silenced() -> Iterator[None]:
    """aiokafka logs a refused InitProducerId at ERROR before raising it; without logging set
    up (the CLI) that is a second, rawer line next to the error we raise for it."""
    sender_log, drop = logging.getLogger("aiokafka.producer.sender"), _DropInitPidErrors()
    sender_log.addFilter(drop)
    try:
        yield
    finally:
        sender_log.removeFilter(drop)
