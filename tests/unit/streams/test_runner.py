"""The stage runner's loop: pipelining, commit order, rebalances, stop (fake consumer and
sink; this is pure control flow — the real consumer is exercised by the integration tests)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace

import pytest
from aiokafka import TopicPartition

from chat_events.codec import build_codec
from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.events.factory import new_envelope
from chat_events.events.types import UserConnected
from chat_events.settings import Settings
from chat_events.streams.records import Incoming, Output, SourceRecord, StageResult
from chat_events.streams.runner import RebalanceFanout, RunnerTimings, StageRunner, next_offsets
from chat_events.streams.stage import BatchProcessor

TOPIC = "in"
TP0, TP1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
TIMINGS = RunnerTimings(batch_max=100, poll_timeout_s=0.01, commit_interval_s=0.01, drain_timeout_s=1.0)


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
    """Hands out scripted batches; records commits; one topic with two partitions."""

    def __init__(self, batches: Sequence[dict[TopicPartition, list[Rec]]]) -> None:
        self.batches = deque(batches)
        self.commits: list[dict[TopicPartition, int]] = []
        self.assigned = {TP0, TP1}
        self.asked: list[tuple[TopicPartition, ...]] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[Rec]]:
        self.asked.append(partitions)
        if self.batches:
            return self.batches.popleft()
        await asyncio.sleep(timeout_ms / 1000)
        return {}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))

    def committed(self) -> dict[TopicPartition, int]:
        merged: dict[TopicPartition, int] = {}
        for commit in self.commits:
            merged.update(commit)
        return merged


class EchoStage:
    name = "echo"
    accepts = frozenset({UserConnected.EVENT_NAME})

    def __init__(self) -> None:
        self.handled: list[list[str]] = []
        self.resets = 0
        self.during_handle: asyncio.Event | None = None
        self.release_handle: asyncio.Event | None = None

    def reset(self) -> None:
        self.resets += 1

    async def handle(self, batch: Sequence[Incoming]) -> StageResult:
        self.handled.append([str(i.envelope.user_id) for i in batch])
        if self.during_handle is not None and self.release_handle is not None:
            self.during_handle.set()
            await self.release_handle.wait()
        return StageResult(outputs=[Output("out", b"k", i.envelope) for i in batch])


class GatedSink:
    """Records what is handed to the producer at once; acknowledges only when the test opens
    the gate (``gate``: all sends; ``gates[i]``: the i-th send, if set up)."""

    def __init__(self, *, open_: bool = True) -> None:
        self.sent: list[list[str]] = []
        self.acked: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gates: list[asyncio.Event] = []
        if open_:
            self.gate.set()

    async def enqueue_outputs(self, outputs: Sequence[Output]) -> Awaitable[None]:
        users = [str(o.envelope.user_id) for o in outputs]
        gate = self.gates[len(self.sent)] if len(self.gates) > len(self.sent) else self.gate
        self.sent.append(users)

        async def acknowledged() -> None:
            await gate.wait()
            self.acked.append(users)

        return acknowledged()

    async def send_outputs(self, outputs: Sequence[Output]) -> None:
        await (await self.enqueue_outputs(outputs))


def recs(codec: AvroEnvelopeCodec, partition: int, first_offset: int, users: Sequence[str]) -> list[Rec]:
    out = []
    for i, user in enumerate(users):
        envelope = new_envelope(UserConnected(edge_id="edge-1"), user_id=user, session_id="s")
        out.append(Rec(TOPIC, partition, first_offset + i, user.encode(), codec.encode(envelope)))
    return out


def runner(consumer: FakeConsumer, stage: EchoStage, sink: GatedSink, codec: AvroEnvelopeCodec) -> StageRunner:
    async def on_assigned() -> None:
        stage.reset()

    processor = BatchProcessor(stage, codec, sink, dead_letter_topic="dlq")
    return StageRunner("echo", TOPIC, processor, consumer, timings=TIMINGS, on_assigned=on_assigned)  # type: ignore[arg-type]


async def until(condition: object, within_s: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not condition():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.005)


def test_next_offsets_is_last_offset_plus_one_per_partition() -> None:
    records = [
        SourceRecord(TOPIC, 0, 5, None, b""),
        SourceRecord(TOPIC, 1, 9, None, b""),
        SourceRecord(TOPIC, 0, 7, None, b""),
    ]
    assert next_offsets(records) == {TP0: 8, TP1: 10}
    assert next_offsets([]) == {}


async def test_offsets_are_committed_only_after_the_outputs_are_acknowledged(codec: AvroEnvelopeCodec) -> None:
    consumer = FakeConsumer([{TP0: recs(codec, 0, 0, ["a", "b"])}])
    stage, sink = EchoStage(), GatedSink(open_=False)
    task = asyncio.ensure_future(runner(consumer, stage, sink, codec).run())
    await until(lambda: sink.sent == [["a", "b"]])
    await asyncio.sleep(0.05)  # several commit intervals
    assert consumer.committed() == {}
    sink.gate.set()
    await until(lambda: consumer.committed() == {TP0: 2})
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_the_next_batch_is_handled_and_enqueued_while_the_previous_awaits_the_broker(
    codec: AvroEnvelopeCodec,
) -> None:
    consumer = FakeConsumer([{TP0: recs(codec, 0, 0, ["a"])}, {TP1: recs(codec, 1, 0, ["b"])}])
    stage, sink = EchoStage(), GatedSink(open_=False)
    task = asyncio.ensure_future(runner(consumer, stage, sink, codec).run())
    await until(lambda: stage.handled == [["a"], ["b"]])  # b handled while a's send is unacknowledged
    await until(lambda: sink.sent == [["a"], ["b"]])  # both handed to the producer, in input order
    await asyncio.sleep(0.05)
    assert consumer.committed() == {}
    sink.gate.set()
    await until(lambda: sink.acked == [["a"], ["b"]])
    await until(lambda: consumer.committed() == {TP0: 1, TP1: 1})
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_offsets_are_committed_in_batch_order_even_if_a_later_batch_is_acknowledged_first(
    codec: AvroEnvelopeCodec,
) -> None:
    consumer = FakeConsumer([{TP0: recs(codec, 0, 0, ["a"])}, {TP1: recs(codec, 1, 0, ["b"])}])
    stage, sink = EchoStage(), GatedSink(open_=False)
    sink.gates = [asyncio.Event(), asyncio.Event()]
    task = asyncio.ensure_future(runner(consumer, stage, sink, codec).run())
    await until(lambda: len(sink.sent) == 2)
    sink.gates[1].set()  # b acknowledged, a not yet
    await until(lambda: sink.acked == [["b"]])
    await asyncio.sleep(0.05)
    assert consumer.committed() == {}  # b's offset waits for a: a crash now must replay a
    sink.gates[0].set()
    await until(lambda: consumer.committed() == {TP0: 1, TP1: 1})
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_at_most_max_in_flight_batches_await_the_broker(codec: AvroEnvelopeCodec) -> None:
    batches = [{TP0: recs(codec, 0, i, [f"u{i}"])} for i in range(TIMINGS.max_in_flight + 3)]
    consumer = FakeConsumer(batches)
    stage, sink = EchoStage(), GatedSink(open_=False)
    task = asyncio.ensure_future(runner(consumer, stage, sink, codec).run())
    await until(lambda: len(sink.sent) == TIMINGS.max_in_flight)
    await asyncio.sleep(0.05)
    assert len(sink.sent) == TIMINGS.max_in_flight  # the loop waits for the oldest
    sink.gate.set()
    await until(lambda: consumer.committed() == {TP0: len(batches)})
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_batch_handled_across_a_rebalance_is_neither_sent_nor_committed(codec: AvroEnvelopeCodec) -> None:
    consumer = FakeConsumer([{TP0: recs(codec, 0, 0, ["a"])}, {TP0: recs(codec, 0, 0, ["a"])}])
    stage, sink = EchoStage(), GatedSink()
    stage.during_handle, stage.release_handle = asyncio.Event(), asyncio.Event()
    under_test = runner(consumer, stage, sink, codec)
    listener = RebalanceFanout([under_test])
    task = asyncio.ensure_future(under_test.run())
    await stage.during_handle.wait()
    await listener.on_partitions_revoked({TP0, TP1})
    await listener.on_partitions_assigned({TP0, TP1})
    resets_before = stage.resets
    stage.during_handle = None  # the replay goes through
    stage.release_handle.set()
    await until(lambda: len(stage.handled) == 2)
    assert stage.resets == resets_before + 1  # caches reset before the replayed batch
    await until(lambda: consumer.committed() == {TP0: 1})
    assert sink.sent == [["a"]]  # only the replay's outputs
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_revocation_waits_for_the_batch_in_flight_and_commits_it(codec: AvroEnvelopeCodec) -> None:
    consumer = FakeConsumer([{TP0: recs(codec, 0, 0, ["a", "b", "c"])}])
    stage, sink = EchoStage(), GatedSink(open_=False)
    under_test = runner(consumer, stage, sink, codec)
    task = asyncio.ensure_future(under_test.run())
    await until(lambda: sink.sent == [["a", "b", "c"]])
    revoking = asyncio.ensure_future(RebalanceFanout([under_test]).on_partitions_revoked({TP0, TP1}))
    await asyncio.sleep(0.03)
    assert not revoking.done()  # still waiting for the broker's acknowledgement
    sink.gate.set()
    await revoking
    assert consumer.committed() == {TP0: 3}
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_stopping_drains_the_batch_in_flight_and_commits_it(codec: AvroEnvelopeCodec) -> None:
    consumer = FakeConsumer([{TP1: recs(codec, 1, 10, ["a"])}])
    stage, sink = EchoStage(), GatedSink(open_=False)
    task = asyncio.ensure_future(runner(consumer, stage, sink, codec).run())
    await until(lambda: sink.sent == [["a"]])
    task.cancel()
    await asyncio.sleep(0.02)
    sink.gate.set()
    await asyncio.gather(task, return_exceptions=True)
    assert consumer.committed() == {TP1: 11}


async def test_a_runner_asks_only_for_its_own_topics_partitions(codec: AvroEnvelopeCodec) -> None:
    consumer = FakeConsumer([])
    consumer.assigned = {TP0, TopicPartition("other", 0)}
    stage, sink = EchoStage(), GatedSink()
    task = asyncio.ensure_future(runner(consumer, stage, sink, codec).run())
    await until(lambda: len(consumer.asked) >= 1)
    consumer.assigned = {TopicPartition("other", 0)}  # nothing of ours: no getmany() (that means "all")
    asked = len(consumer.asked)
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert consumer.asked[0] == (TP0,)
    assert len(consumer.asked) <= asked + 1


# --- review findings (each failed before its fix) -------------------------------------------


class RefusingFirstSink(GatedSink):
    """The first batch's acknowledgement fails once the test says so, and every resend of it
    (its dead letters too) is refused for good; later batches are acknowledged."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_gate = asyncio.Event()

    async def enqueue_outputs(self, outputs: Sequence[Output]) -> Awaitable[None]:
        users = [str(o.envelope.user_id) for o in outputs]
        self.sent.append(users)
        first = len(self.sent) == 1

        async def acknowledged() -> None:
            if first:
                await self.fail_gate.wait()
                raise ValueError("refused")
            self.acked.append(users)

        return acknowledged()

    async def send_outputs(self, outputs: Sequence[Output]) -> None:
        raise ValueError("refused for good")


def with_timings(
    consumer: FakeConsumer, stage: EchoStage, sink: GatedSink, codec: AvroEnvelopeCodec, timings: RunnerTimings
) -> StageRunner:
    processor = BatchProcessor(stage, codec, sink, dead_letter_topic="dlq")
    return StageRunner("echo", TOPIC, processor, consumer, timings=timings)  # type: ignore[arg-type]


async def test_a_batch_that_failed_for_good_blocks_every_later_commit_and_ends_the_runner(
    codec: AvroEnvelopeCodec,
) -> None:
    consumer = FakeConsumer([{TP0: recs(codec, 0, 0, ["a"])}, {TP0: recs(codec, 0, 1, ["b"])}])
    stage, sink = EchoStage(), RefusingFirstSink()
    task = asyncio.ensure_future(with_timings(consumer, stage, sink, codec, TIMINGS).run())
    await until(lambda: len(sink.sent) == 2 and sink.acked == [["b"]])
    sink.fail_gate.set()
    await asyncio.wait([task], timeout=2)
    assert consumer.committed().get(TP0, 0) == 0  # b's offset would skip the lost a
    assert task.done() and isinstance(task.exception(), ValueError)


async def test_a_drain_timeout_during_revocation_leaves_the_runner_running(codec: AvroEnvelopeCodec) -> None:
    consumer = FakeConsumer([{TP0: recs(codec, 0, 0, ["a"])}, {TP0: recs(codec, 0, 1, ["b"])}])
    stage, sink = EchoStage(), GatedSink(open_=False)  # the broker never answers
    timings = RunnerTimings(batch_max=100, poll_timeout_s=0.01, commit_interval_s=0.01, drain_timeout_s=0.1)
    under_test = with_timings(consumer, stage, sink, codec, replace(timings, max_in_flight=1))
    task = asyncio.ensure_future(under_test.run())
    await until(lambda: len(stage.handled) == 2)  # b handled; the loop waits for a's acknowledgement
    await RebalanceFanout([under_test]).on_partitions_revoked({TP0, TP1})
    await RebalanceFanout([under_test]).on_partitions_assigned({TP0, TP1})
    await asyncio.sleep(0.2)
    assert not task.done()  # nothing cancelled the runner from inside
    assert consumer.committed() == {}
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_batch_handled_before_a_revocation_is_not_sent_during_it(codec: AvroEnvelopeCodec) -> None:
    consumer = FakeConsumer([{TP0: recs(codec, 0, 0, ["a"])}, {TP0: recs(codec, 0, 1, ["b"])}])
    stage, sink = EchoStage(), GatedSink(open_=False)
    under_test = with_timings(consumer, stage, sink, codec, replace(TIMINGS, max_in_flight=1))
    task = asyncio.ensure_future(under_test.run())
    await until(lambda: len(stage.handled) == 2)
    revoking = asyncio.ensure_future(RebalanceFanout([under_test]).on_partitions_revoked({TP0, TP1}))
    await asyncio.sleep(0.02)
    sink.gate.set()  # a is acknowledged during the revocation and committed by it
    await revoking
    await asyncio.sleep(0.05)
    assert sink.sent == [["a"]] and consumer.committed() == {TP0: 1}  # b is left to the new owner
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
