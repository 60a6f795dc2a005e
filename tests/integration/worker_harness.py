"""Running a real ``chat-events worker`` process in tests, and watching its effects."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.events.factory import new_envelope
from chat_events.events.types import EdgeHeartbeat, Envelope
from chat_events.producers.publisher import EventPublisher
from chat_events.settings import Settings
from chat_events.topics import USER_EVENTS, TopicCatalog


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment that makes a child process build the same :class:`Settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"CHAT_{name.upper()}"] = str(value)
    return env


class WorkerProcess:
    """``python -m chat_events.cli.main worker`` with the test's settings (its own log lines
    at ``log_level``: INFO shows, e.g., the partitions each stage is assigned)."""

    def __init__(self, settings: Settings, log_path: Path, *, log_level: str = "WARNING") -> None:
        self._settings = settings
        self._log_path = log_path
        self._log_level = log_level
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 60.0) -> None:
        log = self._log_path.open("ab")
        ready_before = self._log_path.read_bytes().count(b"worker ready")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chat_events.cli.main", "worker", "--log-level", self._log_level],
            env=settings_env(self._settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        ready_count = ready_before
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited {self.proc.returncode}:\n{self.log()}")
            if self._log_path.read_bytes().count(b"worker ready") > ready_count:
                return
            time.sleep(0.1)
        self.kill9()  # never leave a half-started worker behind (it would retry forever)
        raise TimeoutError(f"worker not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self._log_path.read_text(errors="replace")[-4000:]

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, *, sig: signal.Signals = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Ask the worker to stop; return its exit code. A worker that hangs fails the test."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            raise AssertionError(f"worker ignored {sig.name} for {timeout}s:\n{self.log()}") from None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


async def wait_until(
    check: Callable[[], Awaitable[bool]],
    *,
    timeout: float = 30.0,  # noqa: ASYNC109 - a polling deadline, not a cancellation scope
    what: str = "condition",
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def heartbeat(
    publisher: EventPublisher, settings: Settings, edge_id: str, *, interval_ms: int = 500, stopping: bool = False
) -> None:
    """What an edge does every interval: one heartbeat on every partition of chat.user-events."""
    topic = TopicCatalog(settings).resolve(USER_EVENTS).name
    envelope = new_envelope(
        EdgeHeartbeat(edge_id=edge_id, interval_ms=interval_ms, started_at_ms=0, sessions=0, stopping=stopping)
    )
    partitions = await publisher.partitions_of(topic)
    await publisher.send_routed([(topic, edge_id.encode(), envelope, p) for p in partitions])


@contextlib.asynccontextmanager
async def edge_alive(
    publisher: EventPublisher, settings: Settings, edge_id: str, interval_ms: int = 300
) -> AsyncIterator[None]:
    """Heartbeats for ``edge_id`` every ``interval_ms`` while the block runs (a live edge)."""

    async def beat() -> None:
        while True:
            await heartbeat(publisher, settings, edge_id, interval_ms=interval_ms)
            await asyncio.sleep(interval_ms / 1000)

    task = asyncio.ensure_future(beat())
    try:
        await heartbeat(publisher, settings, edge_id, interval_ms=interval_ms)
        yield
    finally:
        task.cancel()


async def read_topic(settings: Settings, codec: AvroEnvelopeCodec, topic: str) -> list[Envelope]:
    """Every envelope currently in ``topic`` (all partitions, from the beginning)."""
    return [envelope for _, envelope in await read_topic_raw(settings, codec, topic)]


async def read_topic_raw(settings: Settings, codec: AvroEnvelopeCodec, topic: str) -> list[tuple[Any, Envelope]]:
    """Read as the system's consumers read (``read_committed``: no record of an open or aborted
    transaction), up to the end offsets when called. Done when every partition's position reaches
    its end offset, not when a record at end - 1 was seen: with transactional producers (the
    workers on real Kafka) the last offsets are transaction markers, which no consumer returns."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[tuple[Any, Envelope]] = []
        remaining = {tp for tp in tps if ends[tp] > 0}
        deadline = time.monotonic() + 20
        while remaining and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                out.extend((record, codec.decode(record.value)) for record in records)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return out
    finally:
        await consumer.stop()
