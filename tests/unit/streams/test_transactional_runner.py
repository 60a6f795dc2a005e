"""The transactional runner and its producer pool: sub-batches per partition, no consumer
commits, the order of a handover (pause, InitProducerId, committed offset, seek, resume), fencing
(fake consumer and producers; pure control flow)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError, ProducerFenced, RecordTooLargeError, UnknownError

from chat_events.codec import build_codec
from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.errors import TransactionsUnsupportedError
from chat_events.events.factory import new_envelope
from chat_events.events.types import UserConnected
from chat_events.settings import Settings
from chat_events.streams.producer_pool import ProducerPool
from chat_events.streams.records import Incoming, Output, StageResult
from chat_events.streams.runner import RunnerTimings
from chat_events.streams.stage import BatchProcessor
from chat_events.streams.transactional import PartitionTransactions, TransactionFailedError
from chat_events.streams.transactional_runner import (
    TransactionalRebalance,
    TransactionalStageRunner,
    TransactionTimings,
)

TOPIC = "in"
TP0, TP1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
TIMINGS = RunnerTimings(batch_max=100, poll_timeout_s=0.01, drain_timeout_s=1.0)


@pytest.fixture(scope="module")
def codec() -> AvroEnvelopeCodec:
    return build_codec(Settings())


@dataclass(frozen=True)
class Rec:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes


class FakeConsumer:
    """Scripted batches; positions = after the last record returned (+ ``skip`` markers)."""

    def __init__(self, batches: Sequence[dict[TopicPartition, list[Rec]]], committed: dict[TopicPartition, int]):
        self.batches = deque(batches)
        self.assigned = {TP0, TP1}
        self.paused: set[TopicPartition] = set()
        self.positions: dict[TopicPartition, int] = {}
        self.skip: dict[TopicPartition, int] = {}
        self.stored = dict(committed)
        self.events: list[str] = []
        self.asked: list[set[TopicPartition]] = []
        self.after_seek: dict[tuple[TopicPartition, int], list[dict[TopicPartition, list[Rec]]]] = {}
        """Batches returned once the partition is sought to the offset (its records again)."""

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int, max_records: int) -> dict[Any, Any]:
        self.asked.append(set(partitions))
        if self.batches and set(self.batches[0]) <= set(partitions) - self.paused:
            batch = self.batches.popleft()
            for tp, records in batch.items():
                self.positions[tp] = records[-1].offset + 1 + self.skip.get(tp, 0)
            return batch
        await asyncio.sleep(timeout_ms / 1000)
        return {}

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def commit(self, offsets: Any = None) -> None:
        raise AssertionError("the consumer must not commit in transactional mode")

    def pause(self, *tps: TopicPartition) -> None:
        self.paused |= set(tps)
        self.events += [f"pause {tp.partition}" for tp in sorted(tps)]

    def resume(self, *tps: TopicPartition) -> None:
        self.paused -= set(tps)
        self.events += [f"resume {tp.partition}" for tp in tps]

    async def committed(self, tp: TopicPartition) -> int | None:
        self.events.append(f"committed {tp.partition}")
        return self.stored.get(tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.events.append(f"seek {tp.partition} {offset}")
        self.batches.extend(self.after_seek.pop((tp, offset), []))

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        self.events += [f"seek {tp.partition} beginning" for tp in tps]


class FakeProducer:
    def __init__(self, tid: str, events: list[str], start_errors: list[BaseException]) -> None:
        self.tid, self._events, self._start_errors = tid, events, start_errors
        self._txn_manager: Any = None

    async def start(self) -> None:
        self._events.append(f"init {self.tid}")
        if self._start_errors:
            raise self._start_errors.pop(0)

    async def stop(self) -> None:
        self._events.append(f"stop {self.tid}")


class Commits:
    """Stands in for one transaction; ``fail``: errors to raise by partition, in turn."""

    def __init__(self) -> None:
        self.done: list[tuple[int, list[str], int]] = []
        self.fail: dict[int, list[BaseException]] = {}
        self.kill: set[int] = set()
        """Partitions whose producer dies in their next transaction."""
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, producer: Any, prepared: Any, offsets: dict[TopicPartition, int], group: str) -> None:
        [(tp, offset)] = offsets.items()
        await self.gate.wait()
        if tp.partition in self.kill:  # the producer's sender task fails: aiokafka's fatal state
            self.kill.discard(tp.partition)
            producer._txn_manager = SimpleNamespace(state=SimpleNamespace(name="FATAL_ERROR"))
            raise KafkaError("Unexpected error during batch delivery")
        if self.fail.get(tp.partition):
            raise self.fail[tp.partition].pop(0)
        self.done.append((tp.partition, [key.decode() for _, key, _, _ in prepared], offset))


class EchoStage:
    name = "echo"
    accepts = frozenset({UserConnected.EVENT_NAME})

    def __init__(self) -> None:
        self.handled: list[list[str]] = []

    async def handle(self, batch: Sequence[Incoming]) -> StageResult:
        users = [str(item.envelope.user_id) for item in batch]
        self.handled.append(users)
        pairs = zip(users, batch, strict=True)
        return StageResult(outputs=[Output("out", user.encode(), item.envelope) for user, item in pairs])

    def reset(self) -> None:
        pass


def recs(codec: AvroEnvelopeCodec, tp: TopicPartition, first: int, users: Sequence[str]) -> list[Rec]:
    envelopes = [new_envelope(UserConnected(edge_id="e"), user_id=user, session_id="s") for user in users]
    return [Rec(tp.topic, tp.partition, first + i, b"k", codec.encode(e)) for i, e in enumerate(envelopes)]


@dataclass
class Rig:
    consumer: FakeConsumer
    stage: EchoStage
    commits: Commits
    pool: ProducerPool
    runner: TransactionalStageRunner
    listener: TransactionalRebalance
    start_errors: list[BaseException]


def rig(
    codec: AvroEnvelopeCodec,
    batches: Sequence[dict[TopicPartition, list[Rec]]],
    *,
    committed: dict[TopicPartition, int] | None = None,
    grace_s: float = 20.0,
    defer_s: float = 0.0,
    stage: EchoStage | None = None,
) -> Rig:
    consumer = FakeConsumer(batches, committed or {})
    stage, commits = stage or EchoStage(), Commits()
    start_errors: list[BaseException] = []
    processor = BatchProcessor(stage, codec, None, dead_letter_topic="dlq")  # type: ignore[arg-type]

    def transactions(tp: TopicPartition, producer: Any) -> PartitionTransactions:
        return PartitionTransactions(
            tp, producer, group_id="g", processor=processor, codec=codec, commit=commits, defer_offsets_s=defer_s
        )

    pool = ProducerPool(
        app_id="app",
        topics=[TOPIC],
        make_producer=lambda tid: FakeProducer(tid, consumer.events, start_errors),
        make_transactions=transactions,
    )
    runner = TransactionalStageRunner(
        "echo",
        TOPIC,
        processor,
        consumer,
        pool,
        timings=TIMINGS,
        transactions=TransactionTimings(fenced_grace_s=grace_s),
    )
    listener = TransactionalRebalance([runner], pool, consumer, wait_s=1.0)
    return Rig(consumer, stage, commits, pool, runner, listener, start_errors)


async def until(condition: Any, within_s: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.005)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_each_partition_is_a_sub_batch_committed_with_its_own_offset(codec: AvroEnvelopeCodec) -> None:
    r = rig(codec, [{TP0: recs(codec, TP0, 5, ["a", "b"]), TP1: recs(codec, TP1, 0, ["c"])}])
    r.consumer.skip = {TP1: 1}  # a commit marker after c: the position is past it
    await r.listener.on_partitions_assigned({TP0, TP1})
    task = asyncio.ensure_future(r.runner.run())
    await until(lambda: len(r.commits.done) == 2)
    assert r.stage.handled == [["a", "b"], ["c"]]
    assert sorted(r.commits.done) == [(0, ["a", "b"], 7), (1, ["c"], 2)]
    await stop(task)


async def test_a_handover_pauses_starts_the_producer_then_reads_the_committed_offset(
    codec: AvroEnvelopeCodec,
) -> None:
    r = rig(codec, [], committed={TP0: 42})
    await r.listener.on_partitions_assigned({TP0, TP1})
    events = r.consumer.events
    assert events[:2] == ["pause 0", "pause 1"]  # before anything else: nothing is returned meanwhile
    for p, seek in ((0, "seek 0 42"), (1, "seek 1 beginning")):
        mine = [e for e in events if e.endswith(f" {p}") or f" {p} " in e or e.endswith(f".in.{p}")]
        assert mine == [f"pause {p}", f"init app.in.{p}", f"committed {p}", seek, f"resume {p}"]
    assert r.pool.get(TP0) is not None and not r.consumer.paused

    task = asyncio.ensure_future(r.runner.run())
    await r.listener.on_partitions_revoked({TP0, TP1})
    assert {"stop app.in.0", "stop app.in.1"} <= set(events)
    assert r.pool.get(TP0) is None
    await stop(task)


async def test_revocation_waits_for_the_open_transaction_before_stopping_the_producer(
    codec: AvroEnvelopeCodec,
) -> None:
    r = rig(codec, [{TP0: recs(codec, TP0, 0, ["a"])}])
    r.commits.gate.clear()
    await r.listener.on_partitions_assigned({TP0, TP1})
    task = asyncio.ensure_future(r.runner.run())
    await until(lambda: r.stage.handled == [["a"]])
    revoking = asyncio.ensure_future(r.listener.on_partitions_revoked({TP0, TP1}))
    await asyncio.sleep(0.05)
    assert not revoking.done() and "stop app.in.0" not in r.consumer.events
    r.commits.gate.set()
    await revoking
    assert r.commits.done == [(0, ["a"], 1)]
    assert "stop app.in.0" in r.consumer.events
    await stop(task)


async def test_a_fenced_partition_is_no_longer_fetched_and_fails_the_runner_after_the_grace(
    codec: AvroEnvelopeCodec,
) -> None:
    r = rig(codec, [{TP0: recs(codec, TP0, 0, ["a"])}], grace_s=0.2)
    r.commits.fail = {0: [ProducerFenced()]}
    await r.listener.on_partitions_assigned({TP0, TP1})
    task = asyncio.ensure_future(r.runner.run())
    await until(lambda: r.runner._pool.get(TP0) is not None and not r.runner._pool.get(TP0).usable)  # type: ignore[union-attr]
    r.consumer.asked.clear()
    await asyncio.sleep(0.05)
    assert all(TP0 not in asked for asked in r.consumer.asked)  # still assigned, no longer fetched
    with pytest.raises(TransactionFailedError, match="fenced"):
        await asyncio.wait_for(task, 2.0)
    assert r.commits.done == []


async def test_a_fenced_partition_revoked_in_time_does_not_fail_the_runner(codec: AvroEnvelopeCodec) -> None:
    r = rig(codec, [{TP0: recs(codec, TP0, 0, ["a"])}], grace_s=0.2)
    r.commits.fail = {0: [ProducerFenced()]}
    await r.listener.on_partitions_assigned({TP0, TP1})
    task = asyncio.ensure_future(r.runner.run())
    await until(lambda: r.runner._pool.get(TP0) is not None and not r.runner._pool.get(TP0).usable)  # type: ignore[union-attr]
    await r.listener.on_partitions_revoked({TP0, TP1})  # the rebalance the new owner caused
    r.consumer.assigned = {TP1}
    await r.listener.on_partitions_assigned({TP1})
    await asyncio.sleep(0.4)
    assert not task.done()
    await stop(task)


async def test_a_sub_batch_that_failed_for_good_ends_the_runner(codec: AvroEnvelopeCodec) -> None:
    r = rig(codec, [{TP0: recs(codec, TP0, 0, ["a"])}])
    r.commits.fail = {0: [RecordTooLargeError(), RecordTooLargeError()]}  # outputs and dead letters refused
    await r.listener.on_partitions_assigned({TP0, TP1})
    with pytest.raises(TransactionFailedError):
        await asyncio.wait_for(r.runner.run(), 2.0)
    assert r.commits.done == []


async def test_a_retriable_start_failure_is_retried_and_a_refusal_fails_for_good(codec: AvroEnvelopeCodec) -> None:
    r = rig(codec, [])
    r.start_errors += [KafkaConnectionError()]
    await r.listener.on_partitions_assigned({TP0})
    assert r.consumer.events.count("init app.in.0") == 2 and r.pool.get(TP0) is not None
    r.pool.check()

    refused = rig(codec, [])
    refused.start_errors += [UnknownError()]  # e.g. a broker without transactions
    await refused.listener.on_partitions_assigned({TP0})
    with pytest.raises(TransactionsUnsupportedError, match="CHAT_KAFKA_TRANSACTIONS=off"):
        refused.pool.check()
    assert TP0 in refused.consumer.paused  # never handled without its producer


async def test_a_dead_producer_is_replaced_and_the_partition_replays_from_its_committed_offset(
    codec: AvroEnvelopeCodec,
) -> None:
    first = {TP0: recs(codec, TP0, 0, ["a"])}
    r = rig(codec, [first], committed={TP0: 0})
    r.commits.kill = {0}
    await r.listener.on_partitions_assigned({TP0})
    r.consumer.after_seek[(TP0, 0)] = [first]  # sought back by the replacement: the records again
    task = asyncio.ensure_future(r.runner.run())
    await until(lambda: r.commits.done)
    assert not task.done()  # the runner goes on: nothing failed for good
    assert r.commits.done == [(0, ["a"], 1)]
    replaced = r.consumer.events[r.consumer.events.index("resume 0") + 1 :]
    assert replaced == ["pause 0", "stop app.in.0", "init app.in.0", "committed 0", "seek 0 0", "resume 0"]
    await stop(task)


class QuietStage(EchoStage):
    """Handles records and sends nothing (as the sessions stage does with device acks)."""

    async def handle(self, batch: Sequence[Incoming]) -> StageResult:
        await super().handle(batch)
        return StageResult()


async def test_revocation_commits_the_deferred_offsets_before_stopping_the_producer(
    codec: AvroEnvelopeCodec,
) -> None:
    r = rig(codec, [{TP0: recs(codec, TP0, 0, ["a", "b"])}], defer_s=600.0, stage=QuietStage())
    await r.listener.on_partitions_assigned({TP0, TP1})
    task = asyncio.ensure_future(r.runner.run())
    await until(lambda: r.stage.handled == [["a", "b"]])
    await asyncio.sleep(0.05)
    assert r.commits.done == []  # nothing to send: the offset waits (the timer is 10 minutes away)
    await r.listener.on_partitions_revoked({TP0, TP1})
    assert r.commits.done == [(0, [], 2)]  # committed alone, before the producer stopped
    events = r.consumer.events
    assert "stop app.in.0" in events
    await stop(task)
