"""``chat-events broker`` and ``chat-events up``: the embedded broker alone, or the whole system
(broker, worker, edge) supervised, until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
from typing import Any

from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.kafka.embedded import EmbeddedBroker
from chat_events.settings import Settings
from chat_events.supervisor import Child, Supervisor


def register(sub: Any) -> None:
    broker = sub.add_parser("broker", help="run the embedded Kafka-protocol broker (Tansu) until Ctrl-C")
    broker.add_argument(
        "--port", type=int, default=None, help="listen port (default CHAT_EMBEDDED_BROKER_PORT=9092; 0 = any)"
    )
    broker.set_defaults(handler=run_broker)
    up = sub.add_parser("up", help="start the whole system on the embedded default until Ctrl-C")
    up.add_argument("--port", type=int, default=None, help="broker port (default 9092; 0 = any)")
    up.add_argument("--edge-port", type=int, default=None, help="edge port (default CHAT_EDGE_PORT=8000)")
    up.set_defaults(handler=run_up)


def _wait_for_stop() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def run_broker(args: argparse.Namespace, settings: Settings) -> int:
    port = settings.embedded_broker_port if args.port is None else args.port
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    broker = EmbeddedBroker(port, log_path=settings.data_dir / "broker.log", state_dir=settings.data_dir)
    bootstrap = broker.start()
    try:
        statuses = asyncio.run(ensure_topics(settings, KafkaTarget(bootstrap, embedded=True)))
        print(f"embedded broker listening on {bootstrap} (pid {broker.pid}; memory only)", flush=True)
        for status in statuses:
            print(f"  topic {status.name}: {status.partitions} partitions ({status.status})", flush=True)
        print(
            "other chat-events commands in this directory find it automatically; elsewhere set\n"
            f"  CHAT_KAFKA_BOOTSTRAP_SERVERS={bootstrap} CHAT_KAFKA_IDEMPOTENCE=off\n"
            "Ctrl-C stops it.",
            flush=True,
        )
        _wait_for_stop()
    finally:
        broker.stop()
        print("embedded broker stopped", flush=True)
    return 0


def run_up(args: argparse.Namespace, settings: Settings) -> int:
    """The embedded broker, one worker and one edge, supervised, until Ctrl-C."""
    port = settings.embedded_broker_port if args.port is None else args.port
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    broker = EmbeddedBroker(port, log_path=settings.data_dir / "broker.log", state_dir=settings.data_dir)
    bootstrap = broker.start()
    env = {**os.environ, "CHAT_KAFKA_BOOTSTRAP_SERVERS": bootstrap, "CHAT_KAFKA_IDEMPOTENCE": "off"}
    edge_port = settings.edge_port if args.edge_port is None else args.edge_port
    env["CHAT_EDGE_PORT"] = str(edge_port)
    command = [sys.executable, "-m", "chat_events.cli.main"]
    supervisor = Supervisor(
        [
            Child("worker", [*command, "worker"], env, ready_marker="worker ready"),
            Child("edge", [*command, "edge"], env, ready_marker=" ready (delivery topic"),
        ]
    )
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: supervisor.stopping.set())
    try:
        statuses = asyncio.run(ensure_topics(settings, KafkaTarget(bootstrap, embedded=True)))
        print(f"embedded broker listening on {bootstrap} (pid {broker.pid}; memory only)", flush=True)
        print(f"topics: {len(statuses)}; store: {settings.store_kind} ({settings.store_path})", flush=True)
        supervisor.start_all()
        if supervisor.wait_ready(120):
            host = settings.edge_host
            print(
                f"chat-events is up: ws://{host}:{edge_port}/ws and http://{host}:{edge_port}\n"
                "  Ctrl-C stops everything\n"
                f"  try, in two terminals:  chat-events chat --as alice --to bob\n"
                f"                          chat-events chat --as bob --to alice",
                flush=True,
            )
        elif not supervisor.stopping.is_set():
            print("the worker or the edge did not become ready; see the output above", flush=True)
            return 1
        return supervisor.supervise()
    finally:
        supervisor.stop_all()
        broker.stop()
        print("stopped", flush=True)
