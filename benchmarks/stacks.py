"""The stacks ``bench_worker`` and ``bench_edge`` run on (``--stack``): starting and stopping
them, and the variables their child processes need.

* ``embedded`` (the default): the embedded broker (Tansu, memory only, no idempotent producer)
  and the embedded SQLite store: what the figures in ``docs/benchmarks.md`` were measured on;
* ``kafka``: real Apache Kafka (one KRaft node) started for this run in a fresh folder, and the
  embedded SQLite store;
* ``kafka-cassandra``: real Kafka and real Apache Cassandra (one node, fresh folder); every
  scenario gets a fresh keyspace with the store's schema initialised;
* ``all``: each of them in turn, one after the other (never two stacks at once).

The engines are started by :func:`chat_events.cli.stack.start_stack` (what ``chat-events up``
runs: Kafka and Cassandra in parallel, readiness read from the services) and always stopped
again in a ``finally``. A Kafka node started here is warmed up before anything is timed: its
internal ``__consumer_offsets`` and ``__transaction_state`` topics are created by two
coordinator lookups, so no scenario's window (and no transactions-on run) pays for them.

An explicit ``CHAT_KAFKA_BOOTSTRAP_SERVERS`` still means external Kafka for every stack (its
``CHAT_KAFKA_*`` settings are passed to the children, and ``all`` then skips ``kafka``, which
would repeat ``embedded``); ``CHAT_CASSANDRA_CONTACT_POINTS`` means an external Cassandra for
``kafka-cassandra`` (the benchmark's keyspaces are dropped there at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from chat_events.cli.stack import STACKS, RunningStack, StackName, start_stack
from chat_events.engines import CassandraServer, KafkaServer
from chat_events.kafka.connection import KafkaTarget
from chat_events.kafka.embedded import EmbeddedBroker
from chat_events.settings import Settings
from chat_events.store.cql import init_schema

STACK_CHOICES = (*STACKS, "all")


def add_stack_argument(parser: argparse.ArgumentParser) -> None:
    """``--stack embedded|kafka|kafka-cassandra|all`` (default embedded)."""
    parser.add_argument(
        "--stack",
        choices=STACK_CHOICES,
        default="embedded",
        help="embedded = Tansu + SQLite (default); kafka = real Apache Kafka started for the run + SQLite; "
        "kafka-cassandra = real Kafka + real Cassandra (fresh keyspace per scenario); all = each in turn, "
        "with a comparison table at the end",
    )


def external_kafka() -> str:
    return os.environ.get("CHAT_KAFKA_BOOTSTRAP_SERVERS", "").strip()


def stacks_to_run(choice: str) -> list[StackName]:
    if choice != "all":
        return [choice]  # type: ignore[list-item]
    if external_kafka():  # with external Kafka, "kafka" is "embedded" again (same broker, same store)
        return ["embedded", "kafka-cassandra"]
    return list(STACKS)


def keyspace_name(*parts: str) -> str:
    """A valid Cassandra keyspace name (``[a-z][a-z0-9_]{0,47}``) from ``parts``."""
    name = re.sub(r"[^a-z0-9_]", "_", "_".join(("bench", *parts)).lower())
    return name[:48]


@dataclass
class Stack:
    """One started stack: where its parts listen, their pids, and the children's variables."""

    name: StackName
    running: RunningStack
    external_kafka: bool
    external_cassandra: bool
    start_s: float
    keyspaces: list[str] = field(default_factory=list)
    _cassandra_settings: Settings | None = None

    @property
    def target(self) -> KafkaTarget:
        return KafkaTarget(self.running.kafka_bootstrap, embedded=self.running.kafka_embedded)

    @property
    def cassandra(self) -> bool:
        """Whether the store is Cassandra (only ``kafka-cassandra``)."""
        return self.name == "kafka-cassandra" and self.running.cassandra_contact_point is not None

    def _pid(self, kinds: tuple[type, ...]) -> int | None:
        return next((s.pid for s in self.running.started if isinstance(s, kinds)), None)

    @property
    def broker_pid(self) -> int | None:
        """The broker's process (Tansu or the Kafka JVM); None when Kafka is external."""
        return self._pid((EmbeddedBroker, KafkaServer))

    @property
    def cassandra_pid(self) -> int | None:
        """The Cassandra JVM; None without Cassandra or when it is external."""
        return self._pid((CassandraServer,))

    @property
    def broker_label(self) -> str:
        if self.external_kafka:
            return f"external Kafka {self.running.kafka_bootstrap}"
        if self.running.kafka_embedded:
            return "embedded Tansu (memory only, no idempotence)"
        return f"Apache Kafka, one KRaft node started for this run ({self.running.kafka_bootstrap})"

    @property
    def store_label(self) -> str:
        if not self.cassandra:
            return "embedded SQLite (WAL, synchronous=NORMAL)"
        where = "external" if self.external_cassandra else "one node started for this run"
        return f"Apache Cassandra, {where} ({self.running.cassandra_contact_point}), a fresh keyspace per scenario"

    def child_env(self, keyspace: str | None = None) -> dict[str, str]:
        """The ``CHAT_*`` variables that point a worker or edge at this stack (``keyspace``:
        the scenario's, for Cassandra)."""
        env = self.running.child_env()  # bootstrap servers, idempotence off on Tansu, contact point
        if self.external_kafka:
            env.update({k: v for k, v in os.environ.items() if k.startswith("CHAT_KAFKA_")})
        if self.cassandra:
            if keyspace is None:
                raise ValueError("the Cassandra stack needs a keyspace per scenario")
            if self.external_cassandra:  # credentials, consistency, ... of the external cluster
                env.update({k: v for k, v in os.environ.items() if k.startswith("CHAT_CASSANDRA_")})
            env.update(CHAT_STORE_BACKEND="cassandra", CHAT_CASSANDRA_KEYSPACE=keyspace)
        else:
            env.pop("CHAT_CASSANDRA_CONTACT_POINTS", None)  # an external one in the environment
            env["CHAT_STORE_BACKEND"] = "embedded"
        return env

    async def init_keyspace(self, settings: Settings) -> float:
        """Create ``settings``' keyspace and the store's tables; seconds it took."""
        started = time.perf_counter()
        await init_schema(settings)
        self.keyspaces.append(settings.cassandra_keyspace)
        self._cassandra_settings = settings
        return time.perf_counter() - started

    def _drop_keyspaces(self) -> None:
        """On an external Cassandra, drop what the benchmark created (ours is thrown away whole)."""
        if not (self.external_cassandra and self.keyspaces and self._cassandra_settings):
            return
        from chat_events.store.cassandra_driver import build_cluster

        cluster = build_cluster(self._cassandra_settings)
        try:
            session = cluster.connect()
            for keyspace in self.keyspaces:
                session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
        finally:
            cluster.shutdown()

    def stop(self) -> None:
        try:
            with contextlib.suppress(Exception):
                self._drop_keyspaces()
        finally:
            self.running.stop()


async def warm_kafka(bootstrap_servers: str, timeout_s: float = 90.0) -> None:
    """Have a fresh Kafka node create its internal topics now: ``__consumer_offsets`` (on the
    first group-coordinator lookup) and ``__transaction_state`` (on the first transaction-
    coordinator lookup). Otherwise the first scenario's timed window pays for them (the first
    worker's group join, its first transactional producers), which biases the first of two
    runs on one broker, e.g. transactions on against off."""
    from aiokafka.client import AIOKafkaClient, CoordinationType
    from aiokafka.errors import KafkaError

    client = AIOKafkaClient(bootstrap_servers=bootstrap_servers)
    await client.bootstrap()
    try:
        deadline = time.monotonic() + timeout_s
        for kind in (CoordinationType.GROUP, CoordinationType.TRANSACTION):
            while True:
                try:
                    await client.coordinator_lookup(kind, "chat-events-bench-warm-up")
                    break
                except KafkaError:  # coordinator not available yet: the topic is being created
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
    finally:
        await client.close()


@contextlib.contextmanager
def started_stack(name: StackName, root: Path) -> Iterator[Stack]:
    """Start ``name``'s engines under ``root`` (fresh folders); stop them whatever happens."""
    root.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=root)
    print(f"stack {name}: starting ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    running = start_stack(settings, name, kafka_port=0, cql_port=0)
    try:
        if not (running.kafka_embedded or settings.kafka_bootstrap_servers):
            asyncio.run(warm_kafka(running.kafka_bootstrap))
    except BaseException:
        running.stop()
        raise
    stack = Stack(
        name,
        running,
        external_kafka=bool(settings.kafka_bootstrap_servers),
        external_cassandra=name == "kafka-cassandra" and bool(settings.cassandra_contact_points),
        start_s=time.perf_counter() - started,
    )
    try:
        print(
            f"stack {name}: up in {stack.start_s:.1f} s; broker: {stack.broker_label}; store: {stack.store_label}",
            file=sys.stderr,
            flush=True,
        )
        yield stack
    finally:
        stack.stop()
        print(f"stack {name}: stopped", file=sys.stderr, flush=True)
