"""Typed publishing of chat events: fill the envelope, pick topic and key, encode, send, and
return only once the broker has acknowledged the write (acks=all).

Ordering: records with the same key go to the same partition in send order, so one
conversation's messages (key = conversation id) and one user's session events (key = user id)
stay in order. With idempotence on (real Kafka) a retried batch is never written twice.

Nothing is sent for an invalid event: :class:`EventValidationError` is raised before any IO.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace
from types import TracebackType

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.errors import PublishError
from chat_events.events.conversations import conversation_id_of
from chat_events.events.factory import new_envelope
from chat_events.events.types import (
    EVENT_TYPES,
    Envelope,
    PersonalChatSent,
    UserChatRateLimited,
    UserConnected,
    UserDisconnected,
)
from chat_events.kafka.connection import KafkaTarget
from chat_events.producers.kafka_producer import build_producer, start_producer
from chat_events.settings import Settings
from chat_events.topics import TopicCatalog, key_of


@dataclass(frozen=True, slots=True)
class PublishResult:
    """Where the broker stored an envelope."""

    topic: str
    partition: int
    offset: int
    envelope: Envelope


class EventPublisher:
    """Publishes envelopes to their topics. Construct, then ``await start()`` (or ``async with``)."""

    def __init__(self, settings: Settings, target: KafkaTarget, codec: AvroEnvelopeCodec) -> None:
        self._settings = settings
        self._target = target
        self._codec = codec
        catalog = TopicCatalog(settings)
        self._topic_of_event = {name: catalog.for_event(name).name for name in EVENT_TYPES}
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        producer = build_producer(self._settings, self._target)
        await start_producer(producer, self._settings, self._target)
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def __aenter__(self) -> EventPublisher:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- generic --------------------------------------------------------------------------

    def _prepare(self, envelope: Envelope) -> tuple[str, bytes, bytes]:
        value = self._codec.encode(envelope)  # validates: raises before anything is sent
        return self._topic_of_event[envelope.name], key_of(envelope), value

    async def _send_all(self, prepared: list[tuple[str, bytes, bytes]]) -> list[tuple[str, int, int]]:
        producer = self._producer
        if producer is None:
            raise PublishError("publisher is not started")
        timeout = self._settings.kafka_send_timeout_s
        try:
            async with asyncio.timeout(timeout):
                futures = [await producer.send(topic, value, key=key) for topic, key, value in prepared]
                metadata = await asyncio.gather(*futures)
        except TimeoutError as exc:
            raise PublishError(
                f"the broker at {self._target.bootstrap_servers} did not acknowledge within {timeout:g}s"
            ) from exc
        except KafkaError as exc:
            raise PublishError(f"publish failed: {type(exc).__name__}: {exc}") from exc
        return [(m.topic, m.partition, m.offset) for m in metadata]

    async def publish(self, envelope: Envelope, *, topic: str | None = None) -> PublishResult:
        """Validate, encode and send one envelope; return after the broker acknowledged it.
        ``topic`` overrides the event's primary topic (an edge's delivery topic, say).

        Bounded in time without a timer per call: ``send()`` waits for buffer space and the
        broker's answer is awaited on aiokafka's own future, which fails with
        ``KafkaTimeoutError`` when its batch made no progress for ``kafka_request_timeout_ms``.
        """
        producer = self._producer
        if producer is None:
            raise PublishError("publisher is not started")
        primary, key, value = self._prepare(envelope)
        try:
            future = await producer.send(topic or primary, value, key=key)
            metadata = await future
        except KafkaError as exc:
            raise PublishError(f"publish failed: {type(exc).__name__}: {exc}") from exc
        return PublishResult(metadata.topic, metadata.partition, metadata.offset, envelope)

    async def enqueue(self, envelope: Envelope) -> Awaitable[PublishResult]:
        """Validate, encode and hand one envelope to the producer; the returned awaitable
        resolves once the broker acknowledged it (or raises :class:`PublishError`).

        Envelopes enqueued one after another from one task keep that order in their partition,
        even when their acknowledgements are awaited concurrently: the edge pipelines a
        socket's sends this way without reordering them."""
        producer = self._producer
        if producer is None:
            raise PublishError("publisher is not started")
        topic, key, value = self._prepare(envelope)
        try:
            future = await producer.send(topic, value, key=key)
        except KafkaError as exc:
            raise PublishError(f"publish failed: {type(exc).__name__}: {exc}") from exc

        async def acknowledged() -> PublishResult:
            try:
                metadata = await future
            except KafkaError as exc:
                raise PublishError(f"publish failed: {type(exc).__name__}: {exc}") from exc
            return PublishResult(metadata.topic, metadata.partition, metadata.offset, envelope)

        return acknowledged()

    async def publish_many(self, envelopes: Sequence[Envelope]) -> list[PublishResult]:
        """Send many envelopes in batches; all are validated before the first is sent. Returns
        after every one is acknowledged, results in input order.

        On :class:`PublishError` some envelopes may already be stored: retry the same envelopes
        (same ids); every consumer stage dedupes by envelope and message id."""
        prepared = [self._prepare(envelope) for envelope in envelopes]
        acked = await self._send_all(prepared)
        return [PublishResult(t, p, o, e) for (t, p, o), e in zip(acked, envelopes, strict=True)]

    async def send_routed(
        self, routed: Sequence[tuple[str, bytes, Envelope, int | None]], *, validate: bool = True
    ) -> None:
        """Send envelopes to explicit ``(topic, key, envelope, partition)`` destinations (the
        stream processors route by their own rules: per-edge topics, every partition...).
        Validates all first (unless ``validate`` is False: envelopes derived from validated
        records, see :meth:`AvroEnvelopeCodec.encode`); returns once the broker acknowledged
        every one."""
        await (await self.enqueue_routed(routed, validate=validate))

    async def enqueue_routed(
        self, routed: Sequence[tuple[str, bytes, Envelope, int | None]], *, validate: bool = True
    ) -> Awaitable[None]:
        """:meth:`send_routed` in two steps: hand every envelope to the producer now, in order,
        and return an awaitable that resolves once the broker acknowledged all of them (or
        raises :class:`PublishError`). Envelopes enqueued by successive calls keep that order
        in each partition (aiokafka has one batch in flight per partition), so a stream
        processor can enqueue its next batch's outputs before the previous ones are acknowledged."""
        producer = self._producer
        if producer is None:
            raise PublishError("publisher is not started")
        encode = self._codec.encode
        prepared = [(topic, key, encode(envelope, validate=validate), p) for topic, key, envelope, p in routed]
        try:  # every envelope is encoded (validated) before the first is handed over
            futures = [await producer.send(topic, value, key=key, partition=p) for topic, key, value, p in prepared]
        except KafkaError as exc:
            raise PublishError(f"publish failed: {type(exc).__name__}: {exc}") from exc
        timeout = self._settings.kafka_send_timeout_s

        async def acknowledged() -> None:
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.gather(*futures)
            except TimeoutError as exc:
                raise PublishError(
                    f"the broker at {self._target.bootstrap_servers} did not acknowledge within {timeout:g}s"
                ) from exc
            except KafkaError as exc:
                raise PublishError(f"publish failed: {type(exc).__name__}: {exc}") from exc

        return acknowledged()

    async def partitions_of(self, topic: str) -> list[int]:
        """The partition ids of ``topic`` (from cluster metadata)."""
        producer = self._producer
        if producer is None:
            raise PublishError("publisher is not started")
        partitions = await producer.partitions_for(topic)
        return sorted(partitions)

    # --- typed API ------------------------------------------------------------------------

    async def publish_personal_chat_sent(
        self,
        *,
        sender_id: str,
        target_id: str,
        payload: str,
        target_type: str = "user",
        target_members: Sequence[str] = (),
        message_type: str = "text",
        client_msg_id: str | None = None,
        mentions: Sequence[str] = (),
        message_id: str | None = None,
        client_id: str | None = None,
        session_id: str | None = None,
        trace_id: str | None = None,
    ) -> PublishResult:
        """A message from ``sender_id`` to a user or group; keyed by its conversation id."""
        event = PersonalChatSent(
            message_id=message_id or str(uuid.uuid4()),
            sender_id=sender_id,
            target_id=target_id,
            payload=payload,
            target_type=target_type,
            target_members=tuple(target_members),
            message_type=message_type,
            client_msg_id=client_msg_id,
            mentions=tuple(mentions),
        )
        event = replace(event, conversation_id=conversation_id_of(event))
        envelope = new_envelope(event, user_id=sender_id, client_id=client_id, session_id=session_id, trace_id=trace_id)
        return await self.publish(envelope)

    async def publish_user_connected(
        self,
        *,
        user_id: str,
        session_id: str,
        edge_id: str | None = None,
        device_id: str | None = None,
        client_id: str | None = None,
        trace_id: str | None = None,
    ) -> PublishResult:
        """``user_id`` opened session ``session_id`` on ``edge_id``; keyed by user id."""
        event = UserConnected(edge_id=edge_id, device_id=device_id)
        return await self.publish(
            new_envelope(event, user_id=user_id, session_id=session_id, client_id=client_id, trace_id=trace_id)
        )

    async def publish_user_disconnected(
        self,
        *,
        user_id: str,
        session_id: str,
        reason: str,
        code: int,
        forced: bool,
        edge_id: str | None = None,
        device_id: str | None = None,
        client_id: str | None = None,
        trace_id: str | None = None,
    ) -> PublishResult:
        """Session ``session_id`` of ``user_id`` ended (``forced`` = ended by the server)."""
        event = UserDisconnected(reason=reason, code=code, forced=forced, edge_id=edge_id, device_id=device_id)
        return await self.publish(
            new_envelope(event, user_id=user_id, session_id=session_id, client_id=client_id, trace_id=trace_id)
        )

    async def publish_user_chat_rate_limited(
        self,
        *,
        user_id: str,
        action: str,
        limit: int,
        window_ms: int,
        retry_after_ms: int,
        session_id: str | None = None,
        client_id: str | None = None,
        trace_id: str | None = None,
    ) -> PublishResult:
        """``user_id`` exceeded ``limit`` ``action``s per ``window_ms``; may retry after ``retry_after_ms``."""
        event = UserChatRateLimited(action=action, limit=limit, window_ms=window_ms, retry_after_ms=retry_after_ms)
        return await self.publish(
            new_envelope(event, user_id=user_id, session_id=session_id, client_id=client_id, trace_id=trace_id)
        )
