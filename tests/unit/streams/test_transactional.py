"""Transactional mode, the pure parts and the control flow (fakes: no broker; the real producers
and Kafka are exercised by tests/integration/test_worker_transactions.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaConnectionError,
    KafkaError,
    ProducerFenced,
    RecordTooLargeError,
    RequestTimedOutError,
    UnknownError,
)

from chat_events.codec import build_codec
from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.events.factory import new_envelope
from chat_events.events.types import RecordDeadLettered, UserConnected
from chat_events.kafka.connection import KafkaTarget, consumer_options
from chat_events.settings import Settings
from chat_events.streams.records import Incoming, Output, SourceRecord, StageResult
from chat_events.streams.stage import BatchProcessor
from chat_events.streams.transactional import (
    Outcome,
    PartitionTransactions,
    TransactionFailedError,
    Verdict,
    commit_offset,
    fenced_for_good,
    transactional_id,
    verdict,
)

TP = TopicPartition("p.chat.personal-chat", 3)
REAL, EMBEDDED = KafkaTarget("kafka:9092", embedded=False), KafkaTarget("127.0.0.1:9092", embedded=True)


@pytest.fixture(scope="module")
def codec() -> AvroEnvelopeCodec:
    return build_codec(Settings())


# --- pure decisions ---------------------------------------------------------------------------


def test_transactional_id_is_stable_per_input_partition_and_names_the_prefixed_topic() -> None:
    assert transactional_id("chat-events-worker", TP) == "chat-events-worker.p.chat.personal-chat.3"
    assert transactional_id("w", TopicPartition("chat.inbox", 0)) != transactional_id(
        "w", TopicPartition("chat.inbox", 1)
    )


def _records(*offsets: int) -> list[SourceRecord]:
    return [SourceRecord(TP.topic, TP.partition, offset, None, b"") for offset in offsets]


def test_commit_offset_is_after_the_last_record_or_the_position_past_markers() -> None:
    assert commit_offset(_records(4, 5, 6)) == 7
    assert commit_offset(_records(4, 5, 6), position=9) == 9  # a commit marker and an aborted batch skipped
    assert commit_offset(_records(4, 5, 6), position=3) == 7  # never behind the records handled


@pytest.mark.parametrize(
    ("error", "dead", "parked", "expected"),
    [
        (ProducerFenced(), False, False, Verdict.FENCED),
        (InvalidProducerEpoch(), False, False, Verdict.FENCED),
        (ProducerFenced(), True, False, Verdict.FENCED),  # fenced wins: another worker owns it
        (RequestTimedOutError(), False, False, Verdict.RETRY),
        (KafkaConnectionError(), False, True, Verdict.RETRY),
        (TimeoutError(), False, False, Verdict.RETRY),
        (RequestTimedOutError(), True, False, Verdict.RESTART),  # a dead producer cannot retry: replace it
        (KafkaError("Unexpected error during batch delivery"), True, False, Verdict.RESTART),
        (RecordTooLargeError(), False, False, Verdict.PARK),  # refused for good: dead-letter the inputs
        (RecordTooLargeError(), False, True, Verdict.FAIL),  # even the dead letters refused
        (UnknownError(), False, False, Verdict.PARK),
    ],
)
def test_verdict_of_a_failed_transaction(error: BaseException, dead: bool, parked: bool, expected: Verdict) -> None:
    assert verdict(error, producer_dead=dead, parked=parked) is expected


def test_a_fenced_partition_is_given_up_only_after_the_grace() -> None:
    assert not fenced_for_good(100.0, 110.0, grace_s=20.0)
    assert fenced_for_good(100.0, 121.0, grace_s=20.0)


@pytest.mark.parametrize(
    ("target", "transactions", "idempotence", "expected"),
    [
        (REAL, "auto", "auto", True),
        (EMBEDDED, "auto", "auto", False),
        (REAL, "auto", "off", False),  # a broker without idempotent producers has no transactions
        (EMBEDDED, "on", "auto", True),
        (REAL, "off", "on", False),
    ],
)
def test_transactions_setting(target: KafkaTarget, transactions: str, idempotence: str, expected: bool) -> None:
    settings = Settings(kafka_transactions=transactions, kafka_idempotence=idempotence)  # type: ignore[arg-type]
    assert target.transactions(settings) is expected


def test_every_consumer_reads_committed(tmp_path: Path) -> None:
    assert consumer_options(Settings(data_dir=tmp_path), REAL)["isolation_level"] == "read_committed"


# --- one partition's transactions -------------------------------------------------------------


class EchoStage:
    name = "echo"
    accepts = frozenset({UserConnected.EVENT_NAME})

    async def handle(self, batch: Sequence[Incoming]) -> StageResult:
        raise NotImplementedError

    def reset(self) -> None:
        pass


class FakeProducer:
    def __init__(self) -> None:
        self._txn_manager: Any = None
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True


class FakeCommits:
    """Stands in for :func:`transact`: records each transaction, fails or blocks on request."""

    def __init__(self) -> None:
        self.transactions: list[tuple[list[str], dict[TopicPartition, int]]] = []
        self.failures: list[BaseException] = []
        """Raised by the next calls, in turn."""
        self.failing_calls: dict[int, BaseException] = {}
        """Raised by the n-th call (from 0)."""
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.started = asyncio.Event()

    async def __call__(
        self, producer: Any, prepared: Sequence[tuple[str, bytes, bytes, int | None]], offsets: Any, group_id: str
    ) -> None:
        assert group_id == "group"
        self.started.set()
        call, self.calls = self.calls, self.calls + 1
        await self.gate.wait()
        if call in self.failing_calls:
            raise self.failing_calls[call]
        if self.failures:
            raise self.failures.pop(0)
        self.transactions.append(([topic for topic, _, _, _ in prepared], dict(offsets)))


def outputs(n: int, topic: str = "out") -> StageResult:
    envelope = new_envelope(UserConnected(edge_id="edge-1"), user_id="u", session_id="s")
    return StageResult(outputs=[Output(topic, b"k", envelope) for _ in range(n)])


def partition(codec: AvroEnvelopeCodec, commits: FakeCommits) -> tuple[PartitionTransactions, FakeProducer]:
    producer = FakeProducer()
    processor = BatchProcessor(EchoStage(), codec, None, dead_letter_topic="dlq")  # type: ignore[arg-type]

    async def no_sleep(_: float) -> None:
        await asyncio.sleep(0)

    transactions = PartitionTransactions(
        TP,
        producer,
        group_id="group",
        processor=processor,
        codec=codec,
        sleep=no_sleep,
        commit=commits,
        clock=lambda: 7.0,
    )
    return transactions, producer


async def test_sub_batches_queued_behind_an_open_transaction_commit_together_in_order(
    codec: AvroEnvelopeCodec,
) -> None:
    commits = FakeCommits()
    commits.gate.clear()
    transactions, _ = partition(codec, commits)
    first = transactions.submit(_records(0, 1), outputs(1, "a"), 2)
    await commits.started.wait()  # the first transaction is open
    second = transactions.submit(_records(2), outputs(1, "b"), 3)
    third = transactions.submit(_records(3, 4), outputs(2, "c"), 5)
    commits.gate.set()
    assert tuple(await asyncio.gather(first, second, third)) == (Outcome.COMMITTED,) * 3
    assert commits.transactions == [(["a"], {TP: 2}), (["b", "c", "c"], {TP: 5})]


async def test_a_retriable_failure_sends_the_same_outputs_again(codec: AvroEnvelopeCodec) -> None:
    commits = FakeCommits()
    commits.failures = [RequestTimedOutError(), KafkaConnectionError()]
    transactions, _ = partition(codec, commits)
    assert await transactions.submit(_records(0), outputs(2, "a"), 1) is Outcome.COMMITTED
    assert commits.transactions == [(["a", "a"], {TP: 1})]


async def test_refused_outputs_are_replaced_by_dead_letters_of_the_inputs_with_the_same_offset(
    codec: AvroEnvelopeCodec,
) -> None:
    commits = FakeCommits()
    commits.gate.clear()
    transactions, _ = partition(codec, commits)
    first = transactions.submit(_records(0), outputs(1, "a"), 1)
    await commits.started.wait()
    commits.failing_calls = {1: RecordTooLargeError(), 2: RecordTooLargeError()}  # b+c together, then b alone
    second = transactions.submit(_records(1), outputs(1, "b"), 2)
    third = transactions.submit(_records(2), outputs(1, "c"), 3)
    commits.gate.set()
    assert tuple(await asyncio.gather(first, second, third)) == (Outcome.COMMITTED,) * 3
    # b and c failed together: retried one by one, only b's inputs are parked
    assert commits.transactions == [(["a"], {TP: 1}), (["dlq"], {TP: 2}), (["c"], {TP: 3})]


async def test_parked_dead_letters_carry_the_source_record(codec: AvroEnvelopeCodec) -> None:
    processor = BatchProcessor(EchoStage(), codec, None, dead_letter_topic="dlq")  # type: ignore[arg-type]
    [letter] = processor.outputs_of(processor.parked(_records(41), RecordTooLargeError()))
    assert isinstance(letter.envelope.payload, RecordDeadLettered)
    assert (letter.topic, letter.envelope.payload.source_offset) == ("dlq", 41)


async def test_a_fenced_partition_commits_nothing_more(codec: AvroEnvelopeCodec) -> None:
    commits = FakeCommits()
    commits.gate.clear()
    transactions, _ = partition(codec, commits)
    first = transactions.submit(_records(0), outputs(1), 1)
    await commits.started.wait()
    second = transactions.submit(_records(1), outputs(1), 2)
    commits.failing_calls = {0: ProducerFenced()}
    commits.gate.set()
    assert tuple(await asyncio.gather(first, second)) == (Outcome.FENCED, Outcome.FENCED)
    assert (transactions.usable, transactions.fenced_at) == (False, 7.0)
    assert await transactions.submit(_records(2), outputs(1), 3) is Outcome.FENCED
    assert commits.transactions == []


async def test_a_failure_for_good_fails_this_and_every_later_sub_batch(codec: AvroEnvelopeCodec) -> None:
    commits = FakeCommits()
    commits.failures = [RecordTooLargeError(), RecordTooLargeError()]  # outputs, then the dead letters
    transactions, _ = partition(codec, commits)
    with pytest.raises(TransactionFailedError):
        await transactions.submit(_records(0), outputs(1), 1)
    assert not transactions.usable
    with pytest.raises(TransactionFailedError):  # never committed over the gap
        await transactions.submit(_records(1), outputs(1), 2)
    assert commits.transactions == []


async def test_close_abandons_the_open_transaction_and_stops_the_producer(codec: AvroEnvelopeCodec) -> None:
    commits = FakeCommits()
    commits.gate.clear()
    transactions, producer = partition(codec, commits)
    open_ = transactions.submit(_records(0), outputs(1), 1)
    await commits.started.wait()
    queued = transactions.submit(_records(1), outputs(1), 2)
    await transactions.close()
    assert tuple(await asyncio.gather(open_, queued)) == (Outcome.ABANDONED, Outcome.ABANDONED)
    assert producer.stopped
    assert await transactions.submit(_records(2), outputs(1), 3) is Outcome.ABANDONED


class DeadManager:
    """aiokafka's transaction manager after its sender task failed: in the fatal state."""

    class state:
        name = "FATAL_ERROR"


async def test_a_dead_producer_abandons_what_it_holds_and_is_replaced_once(codec: AvroEnvelopeCodec) -> None:
    commits = FakeCommits()
    commits.gate.clear()
    transactions, producer = partition(codec, commits)
    replaced: list[str] = []
    transactions.on_producer_dead = lambda: replaced.append("replace")
    open_ = transactions.submit(_records(0), outputs(1), 1)
    await commits.started.wait()
    queued = transactions.submit(_records(1), outputs(1), 2)
    producer._txn_manager = DeadManager()  # the sender task failed during the transaction
    commits.failing_calls = {0: KafkaError("Unexpected error during batch delivery")}
    commits.gate.set()
    assert tuple(await asyncio.gather(open_, queued)) == (Outcome.ABANDONED, Outcome.ABANDONED)
    assert replaced == ["replace"] and not transactions.usable
    assert await transactions.submit(_records(2), outputs(1), 3) is Outcome.ABANDONED
    assert commits.transactions == [] and replaced == ["replace"]


async def test_a_dead_producer_without_a_replacement_fails_for_good(codec: AvroEnvelopeCodec) -> None:
    commits = FakeCommits()
    transactions, producer = partition(codec, commits)
    producer._txn_manager = DeadManager()
    commits.failures = [KafkaError("Unexpected error during batch delivery")]
    with pytest.raises(TransactionFailedError):
        await transactions.submit(_records(0), outputs(1), 1)
