"""Pushes to the edges outside a partition's transaction: sent at once and in order, the
transaction's commit waits for their acknowledgement, retriable failures are sent again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence

from aiokafka.errors import KafkaConnectionError

from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.errors import EventValidationError
from chat_events.streams.direct_outputs import DirectOutputs
from chat_events.streams.records import Output, StageResult
from chat_events.streams.stage import BatchProcessor
from chat_events.streams.transactional import Outcome, PartitionTransactions
from tests.unit.streams.test_transactional import TP, EchoStage, FakeCommits, FakeProducer, _records, codec, outputs

__all__ = ["codec"]  # the fixture


class FakeSink:
    """Records what was handed over, in order; acknowledges when ``gate`` is set."""

    def __init__(self) -> None:
        self.enqueued: list[list[str]] = []
        self.resent: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.ack_failures: list[BaseException] = []
        self.handed = asyncio.Queue[None]()

    async def enqueue_outputs(self, outs: Sequence[Output]) -> Awaitable[None]:
        self.enqueued.append([o.topic for o in outs])
        self.handed.put_nowait(None)
        failure = self.ack_failures.pop(0) if self.ack_failures else None

        async def acknowledged() -> None:
            await self.gate.wait()
            if failure is not None:
                raise failure

        return acknowledged()

    async def send_outputs(self, outs: Sequence[Output]) -> None:
        self.resent.append([o.topic for o in outs])


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def with_direct(
    codec: AvroEnvelopeCodec, commits: FakeCommits, sink: FakeSink, defer_s: float = 0.0
) -> PartitionTransactions:
    processor = BatchProcessor(EchoStage(), codec, None, dead_letter_topic="dlq")  # type: ignore[arg-type]
    return PartitionTransactions(
        TP,
        FakeProducer(),  # type: ignore[arg-type]
        group_id="group",
        processor=processor,
        codec=codec,
        sleep=no_sleep,
        commit=commits,
        direct=DirectOutputs(sink, name="test", sleep=no_sleep),
        is_direct=lambda topic: topic.startswith("edge."),
        defer_offsets_s=defer_s,
    )


def mixed(*topics: str) -> StageResult:
    envelope = outputs(1).outputs[0].envelope
    return StageResult(outputs=[Output(topic, b"k", envelope) for topic in topics])


async def test_pushes_leave_the_transaction_and_go_out_at_once_in_order(codec: AvroEnvelopeCodec) -> None:
    commits, sink = FakeCommits(), FakeSink()
    commits.gate.clear()  # no transaction commits during this test's first part
    transactions = with_direct(codec, commits, sink)
    first = transactions.submit(_records(0), mixed("edge.a", "push", "edge.b"), 1)
    second = transactions.submit(_records(1), mixed("edge.a"), 2)
    async with asyncio.timeout(5):
        for _ in range(2):
            await sink.handed.get()
    assert sink.enqueued == [["edge.a", "edge.b"], ["edge.a"]]  # before any commit, in order
    commits.gate.set()
    assert await asyncio.gather(first, second) == [Outcome.COMMITTED, Outcome.COMMITTED]
    assert commits.transactions == [(["push"], {TP: 2})]  # the rest stays in the transaction


async def test_the_commit_waits_until_the_pushes_are_acknowledged(codec: AvroEnvelopeCodec) -> None:
    commits, sink = FakeCommits(), FakeSink()
    sink.gate.clear()
    transactions = with_direct(codec, commits, sink)
    done = transactions.submit(_records(0), mixed("edge.a", "push"), 1)
    await asyncio.sleep(0.05)
    assert not done.done() and commits.calls == 0  # offsets wait for the push's acknowledgement
    sink.gate.set()
    assert await done is Outcome.COMMITTED
    assert commits.transactions == [(["push"], {TP: 1})]


async def test_an_unacknowledged_push_is_sent_again_a_refused_one_given_up(codec: AvroEnvelopeCodec) -> None:
    commits, sink = FakeCommits(), FakeSink()
    sink.ack_failures = [KafkaConnectionError(), EventValidationError("payload", "refused")]
    transactions = with_direct(codec, commits, sink)
    first = transactions.submit(_records(0), mixed("edge.a"), 1)
    second = transactions.submit(_records(1), mixed("edge.b"), 2)
    assert await asyncio.gather(first, second) == [Outcome.COMMITTED, Outcome.COMMITTED]
    assert sink.resent == [["edge.a"]]  # retriable: again; not retriable: logged, not resent


async def test_close_stops_sending(codec: AvroEnvelopeCodec) -> None:
    commits, sink = FakeCommits(), FakeSink()
    sink.gate.clear()
    transactions = with_direct(codec, commits, sink)
    done = transactions.submit(_records(0), mixed("edge.a"), 1)
    await asyncio.sleep(0.01)
    await transactions.close()
    assert await done is Outcome.ABANDONED and commits.calls == 0


async def test_without_direct_outputs_everything_is_in_the_transaction(codec: AvroEnvelopeCodec) -> None:
    commits = FakeCommits()
    processor = BatchProcessor(EchoStage(), codec, None, dead_letter_topic="dlq")  # type: ignore[arg-type]
    transactions = PartitionTransactions(
        TP,
        FakeProducer(),
        group_id="group",
        processor=processor,
        codec=codec,
        commit=commits,  # type: ignore[arg-type]
    )
    assert await transactions.submit(_records(0), mixed("edge.a", "push"), 1) is Outcome.COMMITTED
    assert commits.transactions == [(["edge.a", "push"], {TP: 1})]


# --- offsets alone wait for the next transaction ------------------------------------------------


async def test_an_offset_alone_goes_with_the_next_transaction(codec: AvroEnvelopeCodec) -> None:
    commits, sink = FakeCommits(), FakeSink()
    transactions = with_direct(codec, commits, sink, 60.0)
    assert await transactions.submit(_records(0), StageResult(), 1) is Outcome.DEFERRED
    assert await transactions.submit(_records(1), mixed("edge.a"), 2) is Outcome.DEFERRED  # pushes only
    assert commits.transactions == [] and sink.enqueued == [["edge.a"]]
    assert await transactions.submit(_records(2), mixed("push"), 3) is Outcome.COMMITTED
    assert commits.transactions == [(["push"], {TP: 3})]
    assert transactions.flush() is None  # nothing deferred any more
    await transactions.close()


async def test_a_deferred_offset_commits_alone_after_the_delay_or_when_flushed(codec: AvroEnvelopeCodec) -> None:
    commits, sink = FakeCommits(), FakeSink()
    transactions = with_direct(codec, commits, sink, 0.05)
    assert await transactions.submit(_records(0, 1), StageResult(), 2) is Outcome.DEFERRED
    async with asyncio.timeout(10):
        await commits.started.wait()  # the deferral's timer started a transaction
    await asyncio.sleep(0)
    assert commits.transactions == [([], {TP: 2})]
    later = with_direct(codec, commits, sink, 60.0)
    assert await later.submit(_records(2), StageResult(), 3) is Outcome.DEFERRED
    flushed = later.flush()  # a revocation or a stop does not wait for the timer
    assert flushed is not None and await flushed is Outcome.COMMITTED
    assert commits.transactions[-1] == ([], {TP: 3})
    await later.close()
    await transactions.close()
