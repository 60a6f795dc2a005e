"""A producer's first sends after a topic was created while it ran (the worker producing to an
edge's ``chat.edge.<id>`` created after the worker started) are acknowledged at once.

Before ``TrackingProducer`` (chat_events/producers/kafka_producer.py), on the embedded broker a
record queued for an already known topic, when the first record for the new topic went out,
waited the whole Kafka request timeout and then failed with ``NotLeaderForPartitionError``: the
metadata refresh for the new topic alone dropped every other topic from the producer's metadata.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from chat_events.edges import new_edge_id
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.producers.kafka_producer import build_producer, start_producer
from chat_events.topics import PRESENCE, TopicCatalog
from tests.conftest import make_settings

pytestmark = pytest.mark.integration

ACK_WITHIN_S = 1.5
"""Well under the 3 s request timeout of the test settings (the length of the old stall)."""


async def test_first_sends_after_a_new_topic_are_not_stalled(kafka_target: KafkaTarget, tmp_path: Path) -> None:
    # linger 50 ms: the record for the known topic is still queued when the new topic's
    # metadata arrives (the window in which the stall happened)
    settings = make_settings(kafka_target, tmp_path, kafka_linger_ms=50)
    catalog = TopicCatalog(settings)
    await ensure_topics(settings, kafka_target)
    known = catalog.resolve(PRESENCE).name
    producer = build_producer(settings, kafka_target)
    await start_producer(producer, settings, kafka_target)
    try:
        new = catalog.edge_topic(new_edge_id("fresh"))
        await ensure_topics(settings, kafka_target, [new])  # created while the producer runs

        started = time.monotonic()
        queued = [await producer.send(known, b"v", key=f"k{i}".encode()) for i in range(8)]
        first_new = await producer.send(new.name, b"v", key=b"k")
        acked = await asyncio.wait_for(asyncio.gather(*queued, first_new), timeout=10)
        elapsed = time.monotonic() - started

        assert elapsed < ACK_WITHIN_S, f"first acknowledgements took {elapsed:.2f}s"
        assert {m.topic for m in acked} == {known, new.name}
        # and the known topic is still in the producer's metadata afterwards
        assert producer.client.cluster.partitions_for_topic(known) == set(range(settings.topic_partitions))
        again = await asyncio.wait_for(await producer.send(known, b"v", key=b"k0"), timeout=ACK_WITHIN_S)
        assert again.topic == known
    finally:
        await producer.stop()


async def test_metadata_keeps_every_topic_sent_to(kafka_target: KafkaTarget, tmp_path: Path) -> None:
    """A metadata refresh after the first send to a new topic still covers the topics sent to
    before (the old refresh asked for the new topic alone and forgot them)."""
    settings = make_settings(kafka_target, tmp_path)
    catalog = TopicCatalog(settings)
    await ensure_topics(settings, kafka_target)
    names = [t.name for t in catalog.all()][:3]
    producer = build_producer(settings, kafka_target)
    await start_producer(producer, settings, kafka_target)
    try:
        for name in names:
            await (await producer.send(name, b"v", key=b"k"))
        new = catalog.edge_topic(new_edge_id("fresh"))
        await ensure_topics(settings, kafka_target, [new])
        await (await producer.send(new.name, b"v", key=b"k"))
        await producer.client.force_metadata_update()
        for name in [*names, new.name]:
            assert producer.client.cluster.partitions_for_topic(name) == set(range(settings.topic_partitions)), name
    finally:
        await producer.stop()
