"""``consume_envelopes`` against a real broker: a topic whose metadata arrives late, a topic
that does not exist, and a consumer group."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from chat_events.codec import build_codec
from chat_events.errors import ConfigurationError
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.kafka.consumer import ConsumedRecord, consume_envelopes
from chat_events.producers import EventPublisher
from chat_events.settings import Settings
from chat_events.topics import PERSONAL_CHAT, TopicCatalog
from tests.conftest import make_settings

pytestmark = pytest.mark.integration


async def publish(settings: Settings, target: KafkaTarget, n: int) -> set[str]:
    async with EventPublisher(settings, target, build_codec(settings)) as publisher:
        return {
            (
                await publisher.publish_personal_chat_sent(sender_id="alice", target_id="bob", payload=f"m{i}")
            ).envelope.id
            for i in range(n)
        }


async def read(settings: Settings, target: KafkaTarget, **kwargs: object) -> list[ConsumedRecord]:
    topic = TopicCatalog(settings).resolve(PERSONAL_CHAT).name
    async with asyncio.timeout(60):  # never a hang
        return [r async for r in consume_envelopes(settings, target, build_codec(settings), topic, **kwargs)]  # type: ignore[arg-type]


async def test_a_topic_created_after_the_consumer_started_is_read(kafka_target: KafkaTarget, tmp_path: Path) -> None:
    """What a consumer sees on Apache Kafka right after start (no partitions for the topic in
    its metadata yet): it waits for them instead of seeking with nothing assigned."""
    settings = make_settings(kafka_target, tmp_path, kafka_connect_timeout_s=10.0)
    reading = asyncio.ensure_future(read(settings, kafka_target, from_beginning=True, idle_timeout_s=3.0))
    await asyncio.sleep(1.0)
    assert not reading.done(), reading
    await ensure_topics(settings, kafka_target)
    ids = await publish(settings, kafka_target, 3)
    records = await reading
    assert {r.envelope.id for r in records if r.envelope} == ids


async def test_a_missing_topic_is_a_clear_error_within_the_connect_timeout(
    kafka_target: KafkaTarget, tmp_path: Path
) -> None:
    settings = make_settings(kafka_target, tmp_path, kafka_connect_timeout_s=2.0)
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match="has no partitions on Kafka") as caught:
        await read(settings, kafka_target, idle_timeout_s=1.0)
    assert "chat-events topics create" in str(caught.value)
    assert time.monotonic() - started < settings.kafka_connect_timeout_s + 3


async def test_a_consumer_group_reads_from_its_assignment_and_commits(
    kafka_target: KafkaTarget, tmp_path: Path
) -> None:
    """The embedded broker holds a group's first join for the rebalance timeout, longer than
    the test settings' request timeout: the join must still complete."""
    settings = make_settings(kafka_target, tmp_path)
    await ensure_topics(settings, kafka_target)
    ids = await publish(settings, kafka_target, 3)
    group = f"readers-{uuid.uuid4().hex[:6]}"
    first = await read(settings, kafka_target, group_id=group, from_beginning=True, idle_timeout_s=2.0)
    assert {r.envelope.id for r in first if r.envelope} == ids
    more = await publish(settings, kafka_target, 2)
    second = await read(settings, kafka_target, group_id=group, from_beginning=True, idle_timeout_s=2.0)
    assert {r.envelope.id for r in second if r.envelope} == more  # from the committed offsets on
