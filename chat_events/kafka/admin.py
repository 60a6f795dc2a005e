"""Creating the declared topics, idempotently, on any broker."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from chat_events.errors import BrokerUnavailableError, ConfigurationError
from chat_events.kafka.connection import KafkaTarget, client_options
from chat_events.settings import Settings
from chat_events.topics import ResolvedTopic, TopicCatalog


@dataclass(frozen=True, slots=True)
class TopicStatus:
    name: str
    partitions: int
    status: Literal["created", "exists", "partition-mismatch"]


def ready_partition_counts(metadata: list[dict[str, object]]) -> dict[str, int]:
    """Partition count per topic whose metadata is complete: no topic error and a leader for
    every partition. A topic just created (here or by another client) is missing or leaderless
    for a moment on a real cluster; it is counted only once usable."""
    counts: dict[str, int] = {}
    for topic in metadata:
        partitions = topic.get("partitions") or []
        assert isinstance(partitions, list)
        if topic.get("error_code", 0) != 0 or not partitions:
            continue
        if all(p.get("error_code", 0) == 0 and p.get("leader", -1) >= 0 for p in partitions):
            counts[str(topic["topic"])] = len(partitions)
    return counts


async def _describe(
    admin: AIOKafkaAdminClient, names: list[str], expected: set[str], timeout_s: float
) -> dict[str, int]:
    """Partition count per existing topic among ``names``, waiting (bounded) until every topic
    of ``expected`` (known to exist) is usable."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        counts = ready_partition_counts(await admin.describe_topics(names))
        if expected <= counts.keys() or loop.time() > deadline:
            return counts
        await asyncio.sleep(0.1)


async def ensure_topics(
    settings: Settings, target: KafkaTarget, topics: list[ResolvedTopic] | None = None
) -> list[TopicStatus]:
    """Create every missing topic with its declared partitions and config; report the rest.

    Safe to run any number of times. An existing topic with a different partition count is
    reported as ``partition-mismatch`` and left alone: changing it would move keys to other
    partitions and break per-key order.
    """
    topics = topics if topics is not None else TopicCatalog(settings).all()
    admin = AIOKafkaAdminClient(**client_options(settings, target))
    try:
        await asyncio.wait_for(admin.start(), settings.kafka_connect_timeout_s)
    except (KafkaConnectionError, TimeoutError, OSError) as exc:
        await admin.close()
        raise BrokerUnavailableError(f"cannot reach Kafka at {target.bootstrap_servers}: {exc}") from exc
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        created: set[str] = set()
        if missing:
            new = [NewTopic(t.name, t.partitions, t.replication_factor, topic_configs=t.spec.config()) for t in missing]
            try:
                response = await admin.create_topics(new, timeout_ms=settings.kafka_request_timeout_ms)
            except TopicAlreadyExistsError:
                response = None
            for entry in getattr(response, "topic_errors", []) or []:
                name, code = entry[0], entry[1]
                if code == 0:
                    created.add(name)
                elif code != TopicAlreadyExistsError.errno:
                    raise ConfigurationError(f"cannot create topic {name}: error code {code} {entry[2:]}")
        known = created | {t.name for t in topics if t.name in existing}
        partitions = await _describe(admin, [t.name for t in topics], known, settings.kafka_connect_timeout_s)
        statuses = []
        for topic in topics:
            actual = partitions.get(topic.name, 0)
            if topic.name in created:
                status: Literal["created", "exists", "partition-mismatch"] = "created"
            elif actual == topic.partitions:
                status = "exists"
            else:
                status = "partition-mismatch"
            statuses.append(TopicStatus(topic.name, actual, status))
        return statuses
    except KafkaError as exc:
        raise BrokerUnavailableError(f"topic administration failed: {exc}") from exc
    finally:
        await admin.close()


async def delete_topics(settings: Settings, target: KafkaTarget, names: list[str]) -> list[str]:
    """Delete the topics among ``names`` that exist; returns those deleted. Idempotent."""
    admin = AIOKafkaAdminClient(**client_options(settings, target))
    try:
        await asyncio.wait_for(admin.start(), settings.kafka_connect_timeout_s)
    except (KafkaConnectionError, TimeoutError, OSError) as exc:
        await admin.close()
        raise BrokerUnavailableError(f"cannot reach Kafka at {target.bootstrap_servers}: {exc}") from exc
    try:
        doomed = [name for name in names if name in set(await admin.list_topics())]
        if doomed:
            await admin.delete_topics(doomed, timeout_ms=settings.kafka_request_timeout_ms)
        return doomed
    except KafkaError as exc:
        raise BrokerUnavailableError(f"topic deletion failed: {exc}") from exc
    finally:
        await admin.close()
