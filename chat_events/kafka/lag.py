"""How far a consumer group is behind: end offset minus committed offset, per topic.

The edges use it as their back-pressure signal (``api/backpressure.py``): the records the
workers have not finished yet, read from the broker, so every edge sees the same figure
without talking to the workers.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


def lag_by_topic(
    end: Mapping[TopicPartition, int], committed: Mapping[TopicPartition, int], start: Mapping[TopicPartition, int]
) -> dict[str, int]:
    """Records between the committed position and the end, summed per topic. A partition the
    group never committed counts from its start (the workers read from the earliest offset)."""
    lag: dict[str, int] = {}
    for tp, end_offset in end.items():
        position = committed.get(tp, -1)
        if position < 0:
            position = start.get(tp, 0)
        lag[tp.topic] = lag.get(tp.topic, 0) + max(0, end_offset - position)
    return lag


async def group_lag(
    admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer, group_id: str, topics: Mapping[str, int]
) -> dict[str, int]:
    """The lag of ``group_id`` on each topic of ``topics`` (name -> partition count; see
    :func:`lag_by_topic`). ``consumer`` is any started consumer: it only answers offset queries."""
    partitions = [TopicPartition(topic, p) for topic, count in topics.items() for p in range(count)]
    if not partitions:
        return {}
    end = await consumer.end_offsets(partitions)
    start = await consumer.beginning_offsets(partitions)
    offsets = await admin.list_consumer_group_offsets(group_id, partitions=partitions)
    committed = {tp: meta.offset for tp, meta in offsets.items() if meta is not None}
    return lag_by_topic(end, committed, start)
