"""The real engines of the test session: one Apache Kafka node and one Apache Cassandra node,
started on first use and stopped at the end (chat_events.engines does the work).

``CHAT_TEST_ENGINES``: ``auto`` (default) runs them when this machine can (Java 17+ and Maven,
or a filled engine cache) and otherwise skips the real-engine tests with one line saying why;
``off`` never runs them; ``on`` requires them. With ``CI=true``, ``auto`` behaves like ``on``:
a skip for a missing JDK or Maven fails the run instead of passing it silently.

Every test module gets its own Cassandra keyspace (created on first use) and every test its own
topic prefix, so tests never see each other's rows or records.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from chat_events.engines import CassandraServer, EngineUnavailableError, KafkaServer, engines_available
from chat_events.engines.maven import default_cache_dir

if TYPE_CHECKING:
    from chat_events.settings import Settings


def mode() -> str:
    value = os.environ.get("CHAT_TEST_ENGINES", "auto").strip().lower() or "auto"
    if value == "auto" and os.environ.get("CI", "").lower() == "true":
        return "on"
    return value


def unavailable_reason() -> str | None:
    """Why the real-engine tests cannot run here (None: they can)."""
    if mode() == "off":
        return "CHAT_TEST_ENGINES=off"
    ok, reason = engines_available(default_cache_dir())
    return None if ok else reason


def skip_or_fail(reason: str) -> None:
    if mode() == "on":
        pytest.fail(f"real engines required (CI=true or CHAT_TEST_ENGINES=on) but unavailable: {reason}", False)
    pytest.skip(f"real engines unavailable: {reason}")


@dataclass
class Engines:
    """The session's engines, each started on first use (thread-safe)."""

    root: Path
    kafka: KafkaServer | None = None
    cassandra: CassandraServer | None = None
    keyspaces: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def kafka_bootstrap(self) -> str:
        with self._lock:
            if self.kafka is None:
                server = KafkaServer(self.root / "kafka")
                self._start(server)
                self.kafka = server
            return self.kafka.bootstrap_servers

    def cassandra_contact_point(self) -> str:
        with self._lock:
            if self.cassandra is None:
                server = CassandraServer(self.root / "cassandra", heap_mb=CASSANDRA_TEST_HEAP_MB)
                self._start(server)
                self.cassandra = server
            return self.cassandra.contact_point

    def _start(self, server: KafkaServer | CassandraServer) -> None:
        reason = unavailable_reason()
        if reason is not None:
            skip_or_fail(reason)
        try:
            server.start()
        except EngineUnavailableError as exc:
            skip_or_fail(str(exc))

    def keyspace(self, module: str) -> str:
        """The keyspace of test module ``module``, with the store's schema, created on first use."""
        from chat_events.settings import Settings
        from chat_events.store.cql import init_schema_sync

        contact_point = self.cassandra_contact_point()
        with self._lock:
            if module not in self.keyspaces:
                short = re.sub(r"[^a-z0-9_]", "_", module.rsplit(".", 1)[-1].lower())[:30]
                name = f"t_{short}_{uuid.uuid4().hex[:6]}"
                settings = Settings(cassandra_contact_points=contact_point, cassandra_keyspace=name)
                _in_thread(lambda: init_schema_sync(settings))
                self.keyspaces[module] = name
            return self.keyspaces[module]

    def drop_keyspace(self, module: str) -> None:
        """Drop the keyspace of test module ``module`` once the module is done (see
        :func:`drop_keyspace_sync`)."""
        with self._lock:
            name = self.keyspaces.pop(module, None)
            server = self.cassandra
        if name is not None and server is not None:
            from chat_events.settings import Settings

            _in_thread(
                lambda: drop_keyspace_sync(
                    Settings(cassandra_contact_points=server.contact_point, cassandra_keyspace=name)
                )
            )

    def stop(self) -> None:
        for server in (self.kafka, self.cassandra):
            if server is not None:
                server.stop()


CASSANDRA_TEST_HEAP_MB = 1536
"""The test session's Cassandra heap: every table costs the node heap (memtables, metadata) and
the suites create keyspaces of ~30 tables each; 1 GB ran out once keyspaces were not dropped."""


def drop_keyspace_sync(settings: Settings) -> None:
    """Drop a test keyspace (blocking; tests only: the product never drops anything). A test
    session creates one keyspace per test module and one per Cassandra contract test; kept, they
    add up to thousands of tables, whose memtables and metadata exhausted the node's heap (an
    OutOfMemoryError half-way through CI)."""
    from chat_events.store.cassandra_driver import build_cluster

    cluster: Any = build_cluster(settings)
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {settings.cassandra_keyspace}", timeout=60)
    finally:
        cluster.shutdown()


def _in_thread(work: Callable[[], object]) -> None:
    """Run blocking driver work off the event loop's thread (fixtures may be inside one)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def engines_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engines]:
    engines = Engines(tmp_path_factory.mktemp("engines"))
    try:
        yield engines
    finally:
        engines.stop()
