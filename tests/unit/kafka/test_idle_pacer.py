"""The idle pacing of consumers: the pure mode decision, the pacer over a fake consumer (pause
and resume bookkeeping only: no broker), and the doorbell over real loopback UDP."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

from aiokafka import TopicPartition

from chat_events.kafka.connection import KafkaTarget, fetch_wait_ms, resolve_target
from chat_events.kafka.doorbell import MIN_RING_INTERVAL_S, RESCAN_S, Doorbell, Ringer, parse_entry, registry_dir
from chat_events.kafka.embedded import BrokerState, write_state
from chat_events.kafka.idle_pacer import (
    IdlePacer,
    Mode,
    PacedConsumer,
    PacingPolicy,
    next_mode,
    note_progress,
    pacing_policy,
)
from chat_events.settings import Settings

POLICY = PacingPolicy(idle_after_s=1.0, probe_every_s=5.0, probe_for_s=0.05)
EMBEDDED = KafkaTarget("127.0.0.1:1", embedded=True)
KAFKA = KafkaTarget("127.0.0.1:1", embedded=False)


def test_fetching_pauses_only_after_the_idle_delay() -> None:
    assert next_mode(Mode.FETCHING, 10.5, 10.0, 0.0, POLICY) == (Mode.FETCHING, 11.0)
    assert next_mode(Mode.FETCHING, 11.0, 10.0, 0.0, POLICY) == (Mode.PAUSED, 16.0)


def test_paused_probes_then_pauses_again() -> None:
    assert next_mode(Mode.PAUSED, 12.0, 10.0, 11.0, POLICY) == (Mode.PAUSED, 16.0)
    assert next_mode(Mode.PAUSED, 16.0, 10.0, 11.0, POLICY) == (Mode.PROBING, 16.05)
    assert next_mode(Mode.PROBING, 16.01, 10.0, 16.0, POLICY) == (Mode.PROBING, 16.05)
    assert next_mode(Mode.PROBING, 16.05, 10.0, 16.0, POLICY) == (Mode.PAUSED, 21.05)


def test_pacing_and_fetch_wait_by_broker() -> None:
    settings = Settings()
    assert fetch_wait_ms(settings, EMBEDDED) == 10
    assert fetch_wait_ms(settings, KAFKA) == 500
    assert fetch_wait_ms(Settings(kafka_fetch_max_wait_ms=3), KAFKA) == 3
    assert pacing_policy(settings, KAFKA) is None  # Kafka answers early: nothing to pace
    assert pacing_policy(Settings(kafka_idle_pause_ms=0), EMBEDDED) is None
    assert pacing_policy(settings, EMBEDDED) == PacingPolicy(idle_after_s=0.25, probe_every_s=2.0, probe_for_s=0.03)
    assert pacing_policy(Settings(kafka_idle_pause_ms=1), EMBEDDED).idle_after_s == RESCAN_S  # type: ignore[union-attr]


class FakeConsumer:
    """Only the assignment and pause bookkeeping of aiokafka's consumer."""

    def __init__(self, assigned: set[TopicPartition]) -> None:
        self.assigned = set(assigned)
        self.paused_tps: set[TopicPartition] = set()

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_tps)

    def pause(self, *tps: TopicPartition) -> None:
        assert set(tps) <= self.assigned
        self.paused_tps |= set(tps)

    def resume(self, *tps: TopicPartition) -> None:
        assert set(tps) <= self.assigned, "resumed a partition that is not assigned"
        self.paused_tps -= set(tps)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


A, B, C = (TopicPartition("t", p) for p in range(3))


async def test_pacer_resumes_only_what_it_paused_and_still_assigned() -> None:
    consumer, clock = FakeConsumer({A, B}), Clock()
    consumer.paused_tps = {B}  # paused by someone else (the producer pool)
    pacer = IdlePacer(consumer, POLICY, clock=clock)  # type: ignore[arg-type]
    clock.now += 1.0
    pacer._step()
    assert pacer.mode is Mode.PAUSED and consumer.paused_tps == {A, B}
    pacer.activity()
    assert pacer.mode is Mode.FETCHING and consumer.paused_tps == {B}  # B is not the pacer's
    clock.now += 1.0
    pacer._step()
    assert consumer.paused_tps == {A, B}
    consumer.assigned, consumer.paused_tps = {B, C}, {B}  # a rebalance took A away
    pacer.activity()
    assert consumer.paused_tps == {B}
    pacer.stop()


async def test_activity_while_fetching_only_moves_the_idle_deadline() -> None:
    consumer, clock = FakeConsumer({A}), Clock()
    pacer = IdlePacer(consumer, POLICY, clock=clock)  # type: ignore[arg-type]
    clock.now += 0.9
    pacer.activity()
    clock.now += 0.5  # 1.4 s after start, 0.5 s after the activity
    pacer._step()
    assert pacer.mode is Mode.FETCHING and not consumer.paused_tps
    pacer.stop()


def test_registry_entries() -> None:
    assert parse_entry("123-4567") == (123, 4567)
    assert parse_entry("123-0") is None
    assert parse_entry("x-1") is None
    assert registry_dir("127.0.0.1:9092", Path("/r")) == Path("/r/doorbells/127.0.0.1_9092")


async def test_a_ring_reaches_every_doorbell_and_is_rate_limited(tmp_path: Path) -> None:
    directory = tmp_path / "bells"
    rings = [asyncio.Event(), asyncio.Event()]
    counts = [0, 0]

    def on_ring(i: int) -> None:
        counts[i] += 1
        rings[i].set()

    bells = [Doorbell(directory, lambda i=i: on_ring(i)) for i in range(2)]
    for bell in bells:
        await bell.open()
    now = [0.0]
    ringer = Ringer(directory, clock=lambda: now[0])
    try:
        assert sorted(path.name for path in directory.iterdir()) == sorted(
            f"{os.getpid()}-{bell.port}" for bell in bells
        )
        ringer.ring("t")
        ringer.ring("t")  # within MIN_RING_INTERVAL_S: not sent
        async with asyncio.timeout(10):
            for ring in rings:
                await ring.wait()
        await asyncio.sleep(0.1)
        assert counts == [1, 1]
        for ring in rings:
            ring.clear()
        now[0] += MIN_RING_INTERVAL_S
        ringer.ring("t")
        async with asyncio.timeout(10):
            for ring in rings:
                await ring.wait()
        assert counts == [2, 2]
    finally:
        ringer.close()
        for bell in bells:
            bell.close()
    assert list(directory.iterdir()) == []


async def test_a_doorbell_removes_entries_of_dead_processes(tmp_path: Path) -> None:
    directory = tmp_path / "bells"
    directory.mkdir()
    dead = await asyncio.create_subprocess_exec("true")
    await dead.wait()
    (directory / f"{dead.pid}-4000").touch()
    (directory / f"{os.getpid()}-4001").touch()  # alive: kept
    bell = Doorbell(directory, lambda: None)
    await bell.open()
    try:
        names = {path.name for path in directory.iterdir()}
        assert names == {f"{os.getpid()}-4001", f"{os.getpid()}-{bell.port}"}
    finally:
        bell.close()


def test_the_target_knows_an_explicit_embedded_broker(tmp_path: Path) -> None:
    """`up` and the test harnesses hand the embedded broker to their children as plain bootstrap
    servers: without knowing it is the embedded one, a child would wait 500 ms per fetch on it."""
    with socket.socket() as listening:  # a recorded broker counts only while its port answers
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        servers = f"127.0.0.1:{listening.getsockname()[1]}"
        assert not resolve_target(Settings(kafka_bootstrap_servers=servers, data_dir=tmp_path)).embedded
        assert resolve_target(Settings(kafka_bootstrap_servers=servers, kafka_broker="embedded")).embedded
        write_state(tmp_path, BrokerState(servers, os.getpid()))  # the data dir records it there
        assert resolve_target(Settings(kafka_bootstrap_servers=servers, data_dir=tmp_path)).embedded
        kafka = Settings(kafka_bootstrap_servers=servers, data_dir=tmp_path, kafka_broker="kafka")
        assert not resolve_target(kafka).embedded
        assert not resolve_target(Settings(kafka_bootstrap_servers="127.0.0.1:1", data_dir=tmp_path)).embedded


async def test_a_ring_reaches_only_the_doorbells_of_its_topic(tmp_path: Path) -> None:
    directory = tmp_path / "bells"
    got: dict[str, asyncio.Queue[None]] = {name: asyncio.Queue() for name in ("a", "b", "any")}
    bells = [
        Doorbell(directory, lambda: got["a"].put_nowait(None), ["a"]),
        Doorbell(directory, lambda: got["b"].put_nowait(None), ["b", "c"]),
        Doorbell(directory, lambda: got["any"].put_nowait(None)),
    ]
    for bell in bells:
        await bell.open()
    ringer = Ringer(directory, clock=lambda: 0.0)
    try:
        ringer.ring("b")
        ringer.ring("c")  # "b"'s doorbell was rung just now: rate-limited per doorbell
        ringer.ring("a")  # "any" was rung just now too; "a" was not
        async with asyncio.timeout(10):
            for name in ("a", "b", "any"):
                await got[name].get()
        await asyncio.sleep(0.1)
        assert all(queue.empty() for queue in got.values())
    finally:
        ringer.close()
        for bell in bells:
            bell.close()


async def test_a_stage_finishing_a_batch_wakes_a_paused_consumer(tmp_path: Path) -> None:
    """A batch handled for longer than the idle delay must not leave the consumer paused until
    the next probe (bench_worker's group run: 27 s instead of 7)."""
    policy = PacingPolicy(idle_after_s=0.01, probe_every_s=60, probe_for_s=0.01)
    consumer = PacedConsumer(policy=policy, doorbells=tmp_path, bootstrap_servers="127.0.0.1:1")
    consumer.pacer.start()
    await asyncio.sleep(0.05)  # idle past the delay: paused
    assert consumer.pacer.mode is Mode.PAUSED
    note_progress(consumer)
    assert consumer.pacer.mode is Mode.FETCHING
    consumer.pacer.stop()
    note_progress(object())  # type: ignore[arg-type]  # any other consumer: nothing to do
