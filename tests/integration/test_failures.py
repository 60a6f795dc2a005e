"""Failure paths against real sockets: bad input sends nothing; an unreachable or dead broker
gives a clear error within the configured time, never a hang."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from chat_events.codec import AvroEnvelopeCodec, build_codec
from chat_events.engines.process import free_port
from chat_events.errors import BrokerUnavailableError, EventValidationError, IdempotenceUnsupportedError, PublishError
from chat_events.events import PersonalChatSent, new_envelope
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.kafka.embedded import EmbeddedBroker
from chat_events.producers import EventPublisher
from chat_events.settings import Settings
from chat_events.topics import TopicCatalog
from tests.conftest import make_settings

pytestmark = pytest.mark.integration


async def _end_offsets(target: KafkaTarget, settings: Settings) -> dict[str, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=target.bootstrap_servers)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(t.name, p) for t in TopicCatalog(settings).all() for p in range(settings.topic_partitions)
        ]
        ends = await consumer.end_offsets(partitions)
        totals: dict[str, int] = {}
        for tp, end in ends.items():
            totals[tp.topic] = totals.get(tp.topic, 0) + end
        return totals
    finally:
        await consumer.stop()


GOOD = PersonalChatSent(
    message_id="d7d9d9fd-478f-40e6-b651-49b7f19878a2",
    sender_id="alice",
    target_id="bob",
    payload="hi",
    target_type="user",
)


@pytest.mark.usefixtures("topics")
async def test_invalid_events_are_refused_and_nothing_reaches_kafka(
    settings: Settings, kafka_target: KafkaTarget, codec: AvroEnvelopeCodec
) -> None:
    bad = [
        new_envelope(replace(GOOD, message_id="nope"), user_id="alice"),
        new_envelope(replace(GOOD, payload="x" * (settings.max_payload_bytes + 1)), user_id="alice"),
        new_envelope(replace(GOOD, target_type="planet"), user_id="alice"),
        new_envelope(replace(GOOD, sender_id=123), user_id="alice"),  # type: ignore[arg-type]
    ]
    async with EventPublisher(settings, kafka_target, codec) as publisher:
        for envelope in bad:
            with pytest.raises(EventValidationError):
                await publisher.publish(envelope)
        with pytest.raises(EventValidationError):  # one bad envelope stops the whole batch
            await publisher.publish_many([new_envelope(GOOD, user_id="alice"), bad[0]])
        with pytest.raises(EventValidationError, match="userId"):
            await publisher.publish_user_connected(user_id="", session_id="s")
    assert set((await _end_offsets(kafka_target, settings)).values()) == {0}


async def test_unreachable_broker_fails_fast_with_a_clear_error(tmp_path: Path) -> None:
    target = KafkaTarget(f"127.0.0.1:{free_port()}", embedded=True)
    settings = make_settings(target, tmp_path, kafka_connect_timeout_s=2.0)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailableError, match="cannot reach Kafka"):
        await EventPublisher(settings, target, build_codec(settings)).start()
    assert time.monotonic() - started < settings.kafka_connect_timeout_s + 3


async def test_idempotence_on_a_broker_without_it_says_so(kafka_target: KafkaTarget, tmp_path: Path) -> None:
    """The embedded broker (Tansu) answers InitProducerId with UnknownError: the broker is
    reachable, so the error names the missing feature and the setting, not "cannot reach"."""
    if not kafka_target.embedded:
        pytest.skip("needs a broker without idempotent producers (the embedded one)")
    settings = make_settings(kafka_target, tmp_path, kafka_idempotence="on", kafka_connect_timeout_s=3.0)
    started = time.monotonic()
    with pytest.raises(IdempotenceUnsupportedError) as caught:
        await EventPublisher(settings, kafka_target, build_codec(settings)).start()
    message = str(caught.value)
    assert "does not support idempotent producers" in message and "CHAT_KAFKA_IDEMPOTENCE=off" in message
    assert "cannot reach" not in message
    assert time.monotonic() - started < settings.kafka_connect_timeout_s + 3


async def test_broker_dying_after_start_gives_publish_error_within_send_timeout(tmp_path: Path) -> None:
    with EmbeddedBroker(0) as broker:
        target = KafkaTarget(broker.bootstrap_servers, embedded=True)
        settings = make_settings(target, tmp_path, kafka_send_timeout_s=3.0, kafka_request_timeout_ms=1500)
        await ensure_topics(settings, target)
        publisher = EventPublisher(settings, target, build_codec(settings))
        await publisher.start()
        try:
            await publisher.publish(new_envelope(GOOD, user_id="alice"))
            broker.kill()
            started = time.monotonic()
            with pytest.raises(PublishError):
                await publisher.publish(new_envelope(replace(GOOD, message_id=GOOD.message_id[:-1] + "3")))
            assert time.monotonic() - started < settings.kafka_send_timeout_s + 3
        finally:
            await publisher.stop()
