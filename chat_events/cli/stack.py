"""What ``chat-events up`` runs: the stack it picks and the engines it starts.

Three stacks:

* ``embedded``: the embedded broker (Tansu, memory only) and the embedded SQLite store; no Java;
* ``kafka``: real Apache Kafka (one KRaft node) and the embedded SQLite store;
* ``kafka-cassandra``: real Apache Kafka and real Apache Cassandra, the store's schema
  initialised by ``up`` itself.

The default is ``kafka`` when the real engines can run here (Java 17+ and Maven, or a filled
engine cache) — a user who asked for a Kafka pipeline gets a broker that keeps what it ACKed —
and otherwise ``embedded``, with one line saying why. ``CHAT_KAFKA_BOOTSTRAP_SERVERS`` and
``CHAT_CASSANDRA_CONTACT_POINTS``, when set, are external engines: ``up`` uses them instead of
starting its own. The real engines keep their data under ``CHAT_DATA_DIR/engines`` between runs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from chat_events.engines import CassandraServer, KafkaServer
from chat_events.engines.process import port_accepts
from chat_events.errors import ConfigurationError
from chat_events.kafka.embedded import (
    REAL_STATE_FILE,
    BrokerState,
    EmbeddedBroker,
    remove_state,
    write_state,
)
from chat_events.settings import Settings

StackName = Literal["embedded", "kafka", "kafka-cassandra"]
STACKS: tuple[StackName, ...] = ("embedded", "kafka", "kafka-cassandra")


@dataclass(frozen=True, slots=True)
class StackChoice:
    stack: StackName
    note: str | None = None
    """One line for the user when the choice was not what they asked for or would expect."""


def choose_stack(
    requested: StackName | None, *, engines_ok: bool, engines_reason: str, external_kafka: bool
) -> StackChoice:
    """The stack to run (pure). An explicit request is honoured (the engines then report their
    own errors); without one, ``kafka`` if the engines can run (or Kafka is external), else
    ``embedded`` with the reason."""
    if requested is not None:
        return StackChoice(requested)
    if engines_ok or external_kafka:
        return StackChoice("kafka")
    return StackChoice("embedded", f"running the embedded stack (Tansu, memory only): {engines_reason}")


@dataclass
class RunningStack:
    """The engines ``up`` started (and must stop), and where every part listens."""

    stack: StackName
    kafka_bootstrap: str
    kafka_embedded: bool
    cassandra_contact_point: str | None
    started: list[EmbeddedBroker | KafkaServer | CassandraServer] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    state_dir: Path | None = None
    """Where the real Kafka node's state file was written (so other commands find it)."""
    state_pid: int = 0

    def child_env(self) -> dict[str, str]:
        """The variables that point any other chat-events process at this stack."""
        env = {"CHAT_KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap}
        if self.kafka_embedded:
            env["CHAT_KAFKA_BROKER"] = "embedded"
            env["CHAT_KAFKA_IDEMPOTENCE"] = "off"
        if self.cassandra_contact_point:
            env["CHAT_CASSANDRA_CONTACT_POINTS"] = self.cassandra_contact_point
        return env

    def stop(self) -> None:
        """Stop what was started, newest first (Cassandra, Kafka)."""
        if self.state_dir is not None:
            remove_state(self.state_dir, REAL_STATE_FILE, pid=self.state_pid)
        while self.started:
            self.started.pop().stop()


def require_free(port: int, what: str, flag: str) -> None:
    """Refuse a port that already accepts connections, naming the flag that picks another."""
    if port and port_accepts(port):
        raise ConfigurationError(f"port {port} ({what}) is already in use; pick another with {flag} (0 = any)")


def start_stack(settings: Settings, stack: StackName, *, kafka_port: int, cql_port: int) -> RunningStack:
    """Start the engines of ``stack`` that are not external; Kafka and Cassandra start in
    parallel. On any failure whatever was started is stopped again."""
    engines_dir = settings.data_dir / "engines"
    external_kafka = settings.kafka_bootstrap_servers
    external_cassandra = settings.cassandra_contact_points
    running = RunningStack(stack, "", False, None)
    try:
        kafka: KafkaServer | None = None
        cassandra: CassandraServer | None = None
        if stack == "kafka-cassandra" and not external_cassandra:
            require_free(cql_port, "CQL", "--cql-port")
            cassandra = CassandraServer(engines_dir / "cassandra", port=cql_port)
        if external_kafka:
            running.kafka_bootstrap = external_kafka
            running.notes.append(f"Kafka: external, {external_kafka} (CHAT_KAFKA_BOOTSTRAP_SERVERS)")
        elif stack == "embedded":
            require_free(kafka_port, "Kafka", "--port")
            broker = EmbeddedBroker(kafka_port, log_path=settings.data_dir / "broker.log", state_dir=settings.data_dir)
            running.kafka_bootstrap = broker.start()
            running.kafka_embedded = True
            running.started.append(broker)
        else:
            require_free(kafka_port, "Kafka", "--port")
            kafka = KafkaServer(engines_dir / "kafka", port=kafka_port)
        _start_in_parallel(running, kafka, cassandra)
        if kafka is not None:
            running.kafka_bootstrap = kafka.bootstrap_servers
            running.state_pid = kafka.pid or 0
            write_state(settings.data_dir, BrokerState(kafka.bootstrap_servers, running.state_pid), REAL_STATE_FILE)
            running.state_dir = settings.data_dir
        if cassandra is not None:
            running.cassandra_contact_point = cassandra.contact_point
        elif external_cassandra:
            running.cassandra_contact_point = external_cassandra
        return running
    except BaseException:
        running.stop()
        raise


def _start_in_parallel(running: RunningStack, *servers: KafkaServer | CassandraServer | None) -> None:
    errors: list[BaseException] = []

    def start(server: KafkaServer | CassandraServer) -> None:
        try:
            server.start()
        except BaseException as exc:
            errors.append(exc)

    todo = [server for server in servers if server is not None]
    threads = [threading.Thread(target=start, args=(server,), daemon=True) for server in todo]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    running.started.extend(todo)  # stopped again on failure, as the caller stops ``running``
    if errors:
        raise errors[0]
