"""The Faust engine's agent body: FIFO acks, rebalances, failures (fake stream and sink; the real
Faust consumer is exercised by the worker suites and ``tests/integration/test_faust_traps.py``).

Each test is one of faust-streaming's offset traps, or a guarantee the native runner gives:
#606 (a later batch acked before a slow head one), #527/#315 (an agent exception making Faust
skip the unacked events), a batch taken before a rebalance, revocation, the reset per epoch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest

from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.streams.faust_agent import AgentTimings, Rebalances, StageAgent
from chat_events.streams.stage import BatchProcessor
from tests.unit.streams.test_runner import EchoStage, GatedSink, Rec, RefusingFirstSink, codec, recs, until

__all__ = ["codec"]  # the module-scoped fixture
TIMINGS = AgentTimings(batch_max=100, within_s=0.001, max_in_flight=2, drain_timeout_s=1.0)


@dataclass
class FakeEvent:
    message: Rec
    acks: list[tuple[int, int]]

    def ack(self) -> bool:
        self.acks.append((self.message.partition, self.message.offset))
        return True


@dataclass
class FakeStream:
    """``noack_take`` hands out the scripted batches, then waits (as Faust does when idle)."""

    batches: list[list[Rec]]
    acks: list[tuple[int, int]] = field(default_factory=list)

    async def noack_take(self, max_: int, within: float) -> AsyncIterator[list[FakeEvent]]:
        for batch in self.batches:
            yield [FakeEvent(r, self.acks) for r in batch]
        await asyncio.Event().wait()


def agent(
    stage: EchoStage, sink: GatedSink, codec: AvroEnvelopeCodec, rebalances: Rebalances | None = None
) -> tuple[StageAgent, list[BaseException]]:
    failures: list[BaseException] = []
    processor = BatchProcessor(stage, codec, sink, dead_letter_topic="dlq")

    async def reset() -> None:
        stage.reset()

    made = StageAgent(
        "echo", processor, rebalances or Rebalances(), TIMINGS, on_assigned=reset, on_failure=failures.append
    )
    return made, failures


def events(batch: Sequence[Rec], acks: list[tuple[int, int]]) -> list[FakeEvent]:
    return [FakeEvent(r, acks) for r in batch]


async def test_events_are_acked_only_once_their_outputs_are_acknowledged(codec: AvroEnvelopeCodec) -> None:
    stage, sink = EchoStage(), GatedSink(open_=False)
    stream = FakeStream([recs(codec, 0, 0, ["a", "b"])])
    made, _ = agent(stage, sink, codec)
    task = asyncio.ensure_future(made.run(stream))
    await until(lambda: sink.sent == [["a", "b"]])
    await asyncio.sleep(0.02)
    assert stream.acks == []
    sink.gate.set()
    await until(lambda: stream.acks == [(0, 0), (0, 1)])
    task.cancel()


async def test_a_later_batch_acknowledged_first_is_acked_only_after_the_slow_head_batch(
    codec: AvroEnvelopeCodec,
) -> None:
    """#606: Faust commits the first run of consecutive acked offsets even with the head offset
    unacked (its check lets a gap of one through): acking the later batch first would commit
    over the slow head record, lost on restart."""
    stage, sink = EchoStage(), GatedSink(open_=False)
    sink.gates = [asyncio.Event(), asyncio.Event()]
    stream = FakeStream([recs(codec, 0, 0, ["slow"]), recs(codec, 0, 1, ["fast"])])
    made, _ = agent(stage, sink, codec)
    task = asyncio.ensure_future(made.run(stream))
    await until(lambda: len(sink.sent) == 2)
    sink.gates[1].set()
    await until(lambda: sink.acked == [["fast"]])
    await asyncio.sleep(0.02)
    assert stream.acks == []
    sink.gates[0].set()
    await until(lambda: stream.acks == [(0, 0), (0, 1)])
    task.cancel()


async def test_at_most_max_in_flight_batches_await_the_broker(codec: AvroEnvelopeCodec) -> None:
    stage, sink = EchoStage(), GatedSink(open_=False)
    stream = FakeStream([recs(codec, 0, i, [f"u{i}"]) for i in range(4)])
    made, _ = agent(stage, sink, codec)
    task = asyncio.ensure_future(made.run(stream))
    await until(lambda: len(sink.sent) == TIMINGS.max_in_flight)
    await until(lambda: len(stage.handled) == TIMINGS.max_in_flight + 1)  # the next is handled, not sent
    await asyncio.sleep(0.02)
    assert len(sink.sent) == TIMINGS.max_in_flight
    sink.gate.set()
    await until(lambda: len(stream.acks) == 4)
    task.cancel()


async def test_a_batch_that_failed_for_good_is_never_acked_nor_anything_after_it_and_stops_the_worker(
    codec: AvroEnvelopeCodec,
) -> None:
    """#527/#315: an exception escaping an agent has Faust restart it past the unacked events,
    whose later neighbours then get acked and committed. Here the agent neither returns nor
    raises: it reports the failure (the worker stops) and acks nothing after it."""
    stage, sink = EchoStage(), RefusingFirstSink()
    stream = FakeStream([recs(codec, 0, 0, ["a"]), recs(codec, 0, 1, ["b"]), recs(codec, 0, 2, ["c"])])
    made, failures = agent(stage, sink, codec)
    task = asyncio.ensure_future(made.run(stream))
    await until(lambda: ["b"] in sink.acked)
    sink.fail_gate.set()
    await until(lambda: len(failures) == 1)
    await asyncio.sleep(0.05)
    assert stream.acks == []  # b's offset (and c's) would commit over the lost a
    assert isinstance(failures[0], ValueError)
    assert not task.done()  # waits to be cancelled by the worker's stop; Faust never restarts it
    task.cancel()


async def test_an_error_outside_the_processor_is_reported_not_raised(codec: AvroEnvelopeCodec) -> None:
    stage, sink = EchoStage(), GatedSink()
    made, failures = agent(stage, sink, codec)

    async def broken_reset() -> None:
        raise KeyError("not retriable")

    made.on_assigned = broken_reset
    await made.take(events(recs(codec, 0, 0, ["a"]), []))
    assert [type(f) for f in failures] == [KeyError]
    assert sink.sent == []


async def test_a_batch_handled_across_a_rebalance_is_neither_sent_nor_acked(codec: AvroEnvelopeCodec) -> None:
    stage, sink = EchoStage(), GatedSink()
    stage.during_handle, stage.release_handle = asyncio.Event(), asyncio.Event()
    rebalances = Rebalances()
    made, _ = agent(stage, sink, codec, rebalances)
    acks: list[tuple[int, int]] = []
    taking = asyncio.ensure_future(made.take(events(recs(codec, 0, 0, ["a"]), acks)))
    await stage.during_handle.wait()
    rebalances.epoch += 1  # a revocation ended and an assignment arrived meanwhile
    stage.release_handle.set()
    await taking
    assert sink.sent == [] and acks == []


async def test_revocation_drains_and_acks_the_batches_in_flight_then_forgets_them(codec: AvroEnvelopeCodec) -> None:
    stage, sink = EchoStage(), GatedSink(open_=False)
    rebalances = Rebalances()
    made, _ = agent(stage, sink, codec, rebalances)
    acks: list[tuple[int, int]] = []
    await made.take(events(recs(codec, 0, 0, ["a"]), acks))
    rebalances.revoking = True
    await made.take(events(recs(codec, 0, 1, ["b"]), acks))  # taken during the revocation: not sent
    draining = asyncio.ensure_future(made.drain())
    await asyncio.sleep(0.02)
    sink.gate.set()
    await draining
    assert acks == [(0, 0)] and sink.sent == [["a"]]


async def test_a_batch_still_in_flight_after_a_revocation_is_never_acked(codec: AvroEnvelopeCodec) -> None:
    stage, sink = EchoStage(), GatedSink(open_=False)
    rebalances = Rebalances()
    made, _ = agent(stage, sink, codec, rebalances)
    acks: list[tuple[int, int]] = []
    await made.take(events(recs(codec, 0, 0, ["a"]), acks))
    rebalances.epoch += 1  # the revocation's drain timed out; its partitions may be someone else's now
    made.forget()
    sink.gate.set()
    await until(lambda: sink.acked == [["a"]])
    await asyncio.sleep(0.02)
    assert acks == []


async def test_the_stage_resets_once_per_epoch_before_its_first_batch(codec: AvroEnvelopeCodec) -> None:
    stage, sink = EchoStage(), GatedSink()
    rebalances = Rebalances()
    made, _ = agent(stage, sink, codec, rebalances)
    await made.take(events(recs(codec, 0, 0, ["a"]), []))
    await made.take(events(recs(codec, 0, 1, ["b"]), []))
    assert stage.resets == 1
    rebalances.epoch += 1
    await made.take(events(recs(codec, 0, 2, ["c"]), []))
    assert stage.resets == 2 and made.reset_done(rebalances.epoch)


@pytest.mark.parametrize("flag", ["revoking", "stopping"])
async def test_nothing_new_is_sent_while_revoking_or_stopping(codec: AvroEnvelopeCodec, flag: str) -> None:
    stage, sink = EchoStage(), GatedSink()
    rebalances = Rebalances()
    setattr(rebalances, flag, True)
    made, _ = agent(stage, sink, codec, rebalances)
    acks: list[tuple[int, int]] = []
    await made.take(events(recs(codec, 0, 0, ["a"]), acks))
    assert sink.sent == [] and acks == []


async def test_nothing_is_sent_between_a_revocation_and_the_next_assignment(codec: AvroEnvelopeCodec) -> None:
    """Found by the rebalance test: events still in ``noack_take``'s buffer arrive after the
    revocation; acked before the assignment, Faust (its committed offset unknown then) committed
    their offsets over the 288 records it had dropped from the agent's queue."""
    stage, sink = EchoStage(), GatedSink()
    rebalances = Rebalances(epoch=1, generation=1)
    made, _ = agent(stage, sink, codec, rebalances)
    acks: list[tuple[int, int]] = []
    rebalances.revoking = True
    rebalances.epoch += 1  # the revocation ended; no assignment yet
    await made.take(events(recs(codec, 0, 1426, ["late"]), acks))
    assert sink.sent == [] and acks == []


@dataclass(frozen=True)
class GenRec(Rec):
    generation_id: int = 0


async def test_events_fetched_before_the_assignment_are_dropped(codec: AvroEnvelopeCodec) -> None:
    stage, sink = EchoStage(), GatedSink()
    rebalances = Rebalances(epoch=4, generation=3)
    made, _ = agent(stage, sink, codec, rebalances)
    acks: list[tuple[int, int]] = []
    stale = [GenRec(**vars(r), generation_id=2) for r in recs(codec, 0, 1426, ["stale"])]
    fresh = [GenRec(**vars(r), generation_id=3) for r in recs(codec, 1, 7, ["fresh"])]
    await made.take(events([*stale, *fresh], acks))
    await until(lambda: acks == [(1, 7)])
    assert sink.sent == [["fresh"]]
