"""``chat-events up``: the whole system — broker, store, worker, edge — supervised, until Ctrl-C.

``--stack`` picks the engines (see :mod:`chat_events.cli.stack`). The worker and the edge run as
child processes pointed at them by environment variables, which ``up`` also prints so that any
other command (``publish``, ``consume``, ``chat``, a second worker or edge) can join. Ctrl-C stops
the edge first (it announces its sessions' ends), then the worker, then Cassandra and Kafka.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any

from chat_events.cli.edge_probe import edge_ready_check
from chat_events.cli.stack import STACKS, RunningStack, StackName, choose_stack, require_free, start_stack
from chat_events.engines import engines_available
from chat_events.engines.maven import default_cache_dir
from chat_events.engines.process import free_port
from chat_events.instance_lock import InstanceLock
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.settings import Settings
from chat_events.supervisor import Child, Supervisor


def register(sub: Any) -> None:
    up = sub.add_parser("up", help="start the whole system (broker, store, worker, edge) until Ctrl-C")
    up.add_argument(
        "--stack",
        choices=STACKS,
        default=None,
        help="embedded = Tansu + SQLite (no Java); kafka = real Apache Kafka + SQLite; kafka-cassandra = real "
        "Kafka + real Cassandra. Default: kafka when Java 17+ and Maven (or a filled engine cache) are here",
    )
    up.add_argument(
        "--port", type=int, default=None, help="Kafka port (default CHAT_EMBEDDED_BROKER_PORT=9092; 0 = any)"
    )
    up.add_argument("--cql-port", type=int, default=None, help="Cassandra CQL port (default 9042; 0 = any)")
    up.add_argument("--edge-port", type=int, default=None, help="edge port (default CHAT_EDGE_PORT=8000; 0 = any)")
    up.set_defaults(handler=run_up)


def run_up(args: argparse.Namespace, settings: Settings) -> int:
    edge_port = settings.edge_port if args.edge_port is None else args.edge_port
    edge_port = edge_port or free_port()
    host = settings.edge_host
    # One instance per data directory, checked before anything is started, written or deleted.
    lock = InstanceLock(settings.data_dir, "up").acquire(url=f"http://{host}:{edge_port}")
    try:
        return _run_locked(args, settings, edge_port)
    finally:
        lock.release()


def _run_locked(args: argparse.Namespace, settings: Settings, edge_port: int) -> int:
    requested: StackName | None = args.stack
    ok, reason = (True, "") if requested else engines_available(default_cache_dir())
    choice = choose_stack(
        requested, engines_ok=ok, engines_reason=reason, external_kafka=bool(settings.kafka_bootstrap_servers)
    )
    if choice.note:
        print(choice.note, flush=True)
    kafka_port = settings.embedded_broker_port if args.port is None else args.port
    cql_port = 9042 if args.cql_port is None else args.cql_port
    require_free(edge_port, "edge", "--edge-port")
    if choice.stack != "embedded":
        print(f"starting {choice.stack} (real engines; data in {settings.data_dir / 'engines'}) ...", flush=True)
    running = start_stack(settings, choice.stack, kafka_port=kafka_port, cql_port=cql_port)
    env = {**os.environ, **running.child_env(), "CHAT_EDGE_PORT": str(edge_port)}
    command = [sys.executable, "-m", "chat_events.cli.main"]
    supervisor = Supervisor(
        [
            Child("worker", [*command, "worker"], env, ready_marker="worker ready"),
            Child(
                "edge",
                [*command, "edge"],
                env,
                ready_marker=" ready (delivery topic",
                ready_check=edge_ready_check(settings.edge_host, edge_port),  # /readyz: 200 from our edge
            ),
        ]
    )
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: supervisor.stopping.set())
    try:
        child_settings = settings.model_copy(update=_settings_update(running))
        statuses = asyncio.run(
            ensure_topics(child_settings, KafkaTarget(running.kafka_bootstrap, running.kafka_embedded))
        )
        if child_settings.store_kind == "cassandra":
            from chat_events.store.cql import init_schema

            tables = asyncio.run(init_schema(child_settings))
            keyspace = child_settings.cassandra_keyspace
            store = f"Apache Cassandra on {running.cassandra_contact_point}, keyspace {keyspace} ({len(tables)} tables)"
        else:
            store = f"embedded SQLite ({child_settings.store_path})"
        _announce(running, store, len(statuses))
        supervisor.start_all()
        if supervisor.wait_ready(120):
            host = settings.edge_host
            print(
                f"chat-events is up: ws://{host}:{edge_port}/ws and http://{host}:{edge_port}\n"
                "  Ctrl-C stops everything\n"
                "  try, in two terminals:  .venv/bin/chat-events chat --as alice --to bob\n"
                "                          .venv/bin/chat-events chat --as bob --to alice\n"
                "  a group:                .venv/bin/chat-events group create team --owner alice --members bob,carol\n"
                "                          .venv/bin/chat-events chat --as bob --group team",
                flush=True,
            )
        elif not supervisor.stopping.is_set():
            print("the worker or the edge did not become ready; see the output above", flush=True)
            return 1
        return supervisor.supervise()
    finally:
        supervisor.stop_all()
        running.stop()
        print("stopped", flush=True)


def _settings_update(running: RunningStack) -> dict[str, object]:
    update: dict[str, object] = {"kafka_bootstrap_servers": running.kafka_bootstrap}
    if running.kafka_embedded:
        update["kafka_idempotence"] = "off"
    if running.cassandra_contact_point:
        update["cassandra_contact_points"] = running.cassandra_contact_point
    return update


def _announce(running: RunningStack, store: str, topics: int) -> None:
    if running.kafka_embedded:
        kafka = f"embedded broker (Tansu, memory only) on {running.kafka_bootstrap}"
    else:
        kafka = f"Apache Kafka on {running.kafka_bootstrap}"
    lines = [f"stack {running.stack}: {kafka}; {topics} topics", f"store: {store}", *running.notes]
    exports = " ".join(f"{key}={value}" for key, value in running.child_env().items())
    lines.append(f"other commands (publish, consume, chat, a second worker or edge) join with:\n  export {exports}")
    print("\n".join(lines), flush=True)
