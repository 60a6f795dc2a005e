"""``chat-events broker``: the embedded broker alone, until Ctrl-C (``up`` is in ``up_cmd``)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import threading
from typing import Any

from chat_events.instance_lock import InstanceLock
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.kafka.embedded import EmbeddedBroker
from chat_events.settings import Settings


def register(sub: Any) -> None:
    broker = sub.add_parser("broker", help="run the embedded Kafka-protocol broker (Tansu) until Ctrl-C")
    broker.add_argument(
        "--port", type=int, default=None, help="listen port (default CHAT_EMBEDDED_BROKER_PORT=9092; 0 = any)"
    )
    broker.set_defaults(handler=run_broker)


def _wait_for_stop() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def run_broker(args: argparse.Namespace, settings: Settings) -> int:
    port = settings.embedded_broker_port if args.port is None else args.port
    with InstanceLock(settings.data_dir, "broker") as lock:  # its address file is the directory's
        return _run_locked(settings, port, lock)


def _run_locked(settings: Settings, port: int, lock: InstanceLock) -> int:
    broker = EmbeddedBroker(port, log_path=settings.data_dir / "broker.log", state_dir=settings.data_dir)
    bootstrap = broker.start()
    lock.update(url=bootstrap)
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
