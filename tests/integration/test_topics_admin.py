"""``ensure_topics`` on a real broker: creates, is idempotent, and reports a partition mismatch."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.settings import Settings
from chat_events.topics import TopicCatalog

pytestmark = pytest.mark.integration


async def test_create_is_idempotent(settings: Settings, kafka_target: KafkaTarget) -> None:
    first = await ensure_topics(settings, kafka_target)
    second = await ensure_topics(settings, kafka_target)
    assert {s.status for s in first} == {"created"}
    assert {s.status for s in second} == {"exists"}
    assert {s.name for s in second} == {t.name for t in TopicCatalog(settings).all()}
    assert {s.partitions for s in second} == {settings.topic_partitions}


async def test_existing_topic_with_other_partition_count_is_reported(
    settings: Settings, kafka_target: KafkaTarget
) -> None:
    wrong = TopicCatalog(settings).for_event("personalChatSent").name
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_target.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(wrong, 1, 1)])
    finally:
        await admin.close()
    statuses = {s.name: s for s in await ensure_topics(settings, kafka_target)}
    assert statuses[wrong].status == "partition-mismatch"
    assert statuses[wrong].partitions == 1
