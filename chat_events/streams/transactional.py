"""Exactly-once outputs on real Kafka: one input partition's transactions.

In transactional mode (``CHAT_KAFKA_TRANSACTIONS``, on for real Kafka) a stage's outputs for the
records of one input partition and that partition's next offset are one Kafka transaction:
consumers reading ``read_committed`` see the outputs exactly when the input counts as consumed,
and never the outputs of a batch that will be replayed.

**Why one producer per input partition.** aiokafka 0.14 sends ``TxnOffsetCommit`` v0: no group
generation or member id, so the group coordinator cannot refuse a zombie's offsets (KIP-447).
Fencing comes from the transactional id instead, as in Kafka Streams before KIP-447: each input
partition has its own producer, ``transactional_id = "<worker app id>.<topic>.<partition>"``.
Whoever is assigned the partition starts that producer (InitProducerId), which bumps the id's
epoch: the previous owner's open transaction is aborted at once (a killed worker does not hold
``read_committed`` readers up for ``transaction.timeout.ms``), a committing one is completed
first, and any later request of the old producer fails with ``ProducerFenced``. Only then does
the new owner read the partition's committed offset (``producer_pool.py``).

**Pushes to the edges go outside the transaction** (``direct_outputs.py``): an edge's topic has
one reader that drops a seq it already pushed, and a ``read_committed`` dispatch would wait for
every transaction open on its partition. The transaction commits only once they are acknowledged.

**No transaction for an offset alone.** A sub-batch with nothing to send in the transaction
(device acks, heartbeats, an inbox batch whose recipients are all online) is resolved as
:attr:`Outcome.DEFERRED`: its offset goes with the partition's next transaction, or alone after
``defer_offsets_s`` (or when the runner drains); a crash before that replays records that have
no outputs to repeat (their store writes are idempotent). Most records of a busy worker are such.

**One transaction at a time per partition, in order.** :class:`PartitionTransactions` queues the
handled sub-batches of its partition and commits them one transaction after the other; the
sub-batches that queued up while one transaction was in flight go together into the next (fewer,
larger transactions under load). Different partitions commit concurrently.

**Failures** (:func:`verdict`): a retriable error aborts the transaction and sends the same
outputs again (store writes are idempotent, output ids deterministic); outputs the broker refuses
for good are replaced by dead letters of their input records, as :class:`BatchProcessor` does;
``ProducerFenced`` means another worker owns the partition now, so this one stops handling it
(the rebalance revokes it); a producer in aiokafka's fatal state (its sender task failed, as in
a broker outage's "Unexpected error during batch delivery") is replaced: what it had queued is
abandoned and ``on_producer_dead`` has the pool start the partition again as on assignment (a new
producer with the same transactional id aborts the open transaction, then the committed offset
is re-read and the partition replays from it); anything else fails for good and stops the
worker, since committing a later sub-batch would skip this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import InvalidProducerEpoch, ProducerFenced

from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.streams.direct_outputs import DirectOutputs
from chat_events.streams.records import Output, SourceRecord, StageResult
from chat_events.streams.stage import BatchProcessor, is_retriable

log = logging.getLogger(__name__)


class TransactionFailedError(RuntimeError):
    """A sub-batch could not be committed and never will be: the worker must stop (its
    partition's later sub-batches are never committed over it)."""


class Outcome(enum.Enum):
    COMMITTED = "committed"
    FENCED = "fenced"
    """Another producer took the partition's transactional id: nothing of it commits here now."""
    ABANDONED = "abandoned"
    """The partition was given up (revoked, stopping) before the sub-batch committed."""
    DEFERRED = "deferred"
    """Nothing to commit but the offset: it goes with the partition's next transaction (or a
    flush); a crash before that replays the sub-batch, which has no outputs to repeat."""


class Verdict(enum.Enum):
    RETRY = "retry"
    PARK = "park"
    FENCED = "fenced"
    RESTART = "restart"
    """The producer is dead: a new one, with the same transactional id, can go on."""
    FAIL = "fail"


def transactional_id(app_id: str, tp: TopicPartition) -> str:
    """The stable transactional id of input partition ``tp`` (its topic name with the prefix)."""
    return f"{app_id}.{tp.topic}.{tp.partition}"


def commit_offset(records: Sequence[SourceRecord], position: int | None = None) -> int:
    """The offset to commit once ``records`` (one partition's, in offset order) are done: the
    last offset + 1, or the consumer's ``position`` when it is further. After the last record of a
    fetch the position also skips transaction markers and aborted records, which hold nothing to
    process; committing it keeps the group's lag at 0 on transactional input topics."""
    after_last = records[-1].offset + 1
    return after_last if position is None else max(after_last, position)


def verdict(exc: BaseException, *, producer_dead: bool, parked: bool) -> Verdict:
    """What to do after a transaction attempt failed with ``exc``. ``producer_dead``: the producer
    is in a fatal state (only a new producer could go on); ``parked``: the outputs are already the
    dead letters of the inputs."""
    if isinstance(exc, ProducerFenced | InvalidProducerEpoch):
        return Verdict.FENCED
    if producer_dead:
        return Verdict.RESTART
    if is_retriable(exc):
        return Verdict.RETRY
    return Verdict.FAIL if parked else Verdict.PARK


def fenced_for_good(fenced_at: float, now: float, grace_s: float) -> bool:
    """A fenced partition that is still assigned after ``grace_s`` was not taken over by another
    worker (its transaction timed out): only a restart gets it going again."""
    return now - fenced_at > grace_s


Prepared = tuple[str, bytes, bytes, int | None]
"""An encoded output: topic, key, value, partition (None = from the key)."""


def txn_state(producer: AIOKafkaProducer) -> str:
    """The name of the producer's transaction state (aiokafka has no public accessor)."""
    manager = producer._txn_manager
    return "NONE" if manager is None else str(manager.state.name)


async def transact(
    producer: AIOKafkaProducer, prepared: Sequence[Prepared], offsets: dict[TopicPartition, int], group_id: str
) -> None:
    """One transaction: every output, the input offsets, commit. Any failure aborts it (when the
    producer can still abort) and is raised. Every output is acknowledged before the commit: an
    output the broker refused must fail the transaction, not vanish from a committed one."""
    await producer.begin_transaction()
    try:
        futures = [await producer.send(topic, value, key=key, partition=p) for topic, key, value, p in prepared]
        await producer.send_offsets_to_transaction(offsets, group_id)
        results = await asyncio.gather(*futures, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        await producer.commit_transaction()
    except Exception:
        if txn_state(producer) in ("IN_TRANSACTION", "ABORTABLE_ERROR"):
            with contextlib.suppress(Exception):  # the first error is the one to handle
                await producer.abort_transaction()
        raise


@dataclass(slots=True)
class SubBatch:
    """One partition's records handled by the stage, waiting for their transaction."""

    records: Sequence[SourceRecord]
    result: StageResult
    offset: int
    done: asyncio.Future[Outcome] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    direct_sent: asyncio.Future[None] | None = None
    """Its outputs sent outside the transaction (``direct_outputs.py``), once acknowledged."""
    flush: bool = False
    """A stand-in that commits the deferred offset (:meth:`PartitionTransactions.flush`)."""


class PartitionTransactions:
    """The transactions of one input partition, over its own producer (see the module docstring).

    ``submit`` never blocks; the returned future resolves with the :class:`Outcome` or fails with
    :class:`TransactionFailedError`. ``close`` cancels what is in flight (its transaction stays
    open on the broker until the partition's next owner starts the same transactional id) and
    stops the producer."""

    def __init__(
        self,
        tp: TopicPartition,
        producer: AIOKafkaProducer,
        *,
        group_id: str,
        processor: BatchProcessor,
        codec: AvroEnvelopeCodec,
        max_backoff_s: float = 5.0,
        clock: Callable[[], float] = lambda: asyncio.get_running_loop().time(),
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        commit: Callable[..., Awaitable[None]] = transact,
        direct: DirectOutputs | None = None,
        is_direct: Callable[[str], bool] = lambda topic: False,
        defer_offsets_s: float = 0.0,
    ) -> None:
        self.tp = tp
        self.producer = producer
        self.fenced_at: float | None = None
        self.on_producer_dead: Callable[[], None] | None = None
        """Called once when the producer died (module docstring); unset, a dead producer fails
        the partition for good instead."""
        self._group_id = group_id
        self._processor = processor
        self._codec = codec
        self._max_backoff_s = max_backoff_s
        self._clock = clock
        self._sleep = sleep
        self._commit = commit
        self._direct = direct
        self._is_direct = is_direct
        self._defer_offsets_s = defer_offsets_s
        self._deferred_offset: int | None = None
        self._flush_timer: asyncio.TimerHandle | None = None
        self._queue: list[SubBatch] = []
        self._task: asyncio.Task[None] | None = None
        self._failure: TransactionFailedError | None = None
        self._closed = False

    @property
    def usable(self) -> bool:
        return self.fenced_at is None and self._failure is None and not self._closed

    def submit(self, records: Sequence[SourceRecord], result: StageResult, offset: int) -> asyncio.Future[Outcome]:
        batch = SubBatch(records, result, offset)
        if self._failure is not None:
            batch.done.set_exception(self._failure)
        elif self.fenced_at is not None or self._closed:
            batch.done.set_result(Outcome.FENCED if self.fenced_at is not None else Outcome.ABANDONED)
        else:
            if self._direct is not None:  # dead letters (the rest of outputs_of) are never direct
                batch.direct_sent = self._direct.send([o for o in result.outputs if self._is_direct(o.topic)])
            self._queue.append(batch)
            if self._task is None or self._task.done():
                self._task = asyncio.ensure_future(self._run())
        return batch.done

    def flush(self) -> asyncio.Future[Outcome] | None:
        """Commit the deferred offset now (a revocation, a stop, or the deferral's timer); None
        when there is none."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._deferred_offset is None or not self.usable:
            return None
        batch = SubBatch([], StageResult(), self._deferred_offset, flush=True)
        self._queue.append(batch)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        return batch.done

    async def close(self) -> None:
        self._closed = True
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._resolve(self._queue, Outcome.ABANDONED)
        self._queue = []
        if self._direct is not None:
            await self._direct.close()
        with contextlib.suppress(Exception):
            await self.producer.stop()

    async def _run(self) -> None:
        while self._queue and self.usable:
            batches, self._queue = self._queue, []
            try:
                await self._commit_together(batches)
            except asyncio.CancelledError:
                self._resolve(batches, Outcome.ABANDONED)
                raise
            except TransactionFailedError as exc:
                self._failure = exc
                for batch in [*batches, *self._queue]:
                    if not batch.done.done():
                        batch.done.set_exception(exc)
                self._queue = []

    async def _commit_together(self, batches: list[SubBatch]) -> None:
        """Commit ``batches`` in one transaction; if the broker refuses their outputs for good,
        commit them one by one, so that only the culprit's inputs are dead-lettered."""
        if self._closed:  # the producer died while these waited
            self._resolve(batches, Outcome.ABANDONED)
            return
        outputs = [
            output
            for batch in batches
            for output in self._processor.outputs_of(batch.result)
            if batch.direct_sent is None or not self._is_direct(output.topic)
        ]
        direct = [batch.direct_sent for batch in batches if batch.direct_sent is not None]
        if direct:  # their offsets commit only once their pushes are acknowledged
            await asyncio.gather(*direct)
        offset = max(batch.offset for batch in batches)
        if not outputs and self._defer_offsets_s > 0 and not any(batch.flush for batch in batches):
            self._defer(offset)
            self._resolve(batches, Outcome.DEFERRED)
            return
        if self._deferred_offset is not None:
            offset = max(offset, self._deferred_offset)
        try:
            outcome = await self._retrying(outputs, offset, parked=False)
        except _Refused as refused:
            if len(batches) > 1:
                for batch in batches:
                    await self._commit_together([batch])
                return
            parked = self._processor.outputs_of(self._processor.parked(batches[0].records, refused.error))
            outcome = await self._retrying(parked, offset, parked=True)
        self._resolve(batches, outcome)
        self._deferred_offset = None  # committed with it, or (fenced, abandoned) the next owner replays
        if outcome is Outcome.FENCED:
            self._resolve(self._queue, Outcome.FENCED)
            self._queue = []
        elif outcome is Outcome.ABANDONED:  # the producer died: the partition starts again
            self._resolve(self._queue, Outcome.ABANDONED)
            self._queue = []
            replace, self.on_producer_dead = self.on_producer_dead, None
            if replace is not None:
                replace()

    def _defer(self, offset: int) -> None:
        """Keep ``offset`` for the next transaction; commit it alone after ``defer_offsets_s``."""
        self._deferred_offset = offset if self._deferred_offset is None else max(offset, self._deferred_offset)
        if self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(self._defer_offsets_s, self.flush)

    async def _retrying(self, outputs: list[Output], offset: int, *, parked: bool) -> Outcome:
        prepared = [(o.topic, o.key, self._codec.encode(o.envelope, validate=False), o.partition) for o in outputs]
        delay = 0.05
        while True:
            try:
                await self._commit(self.producer, prepared, {self.tp: offset}, self._group_id)
                return Outcome.COMMITTED
            except Exception as exc:
                action = verdict(exc, producer_dead=txn_state(self.producer) == "FATAL_ERROR", parked=parked)
                where = f"{self.tp.topic}[{self.tp.partition}]"
                if action is Verdict.FENCED:
                    log.warning("%s: fenced (%s): another worker owns it now; no longer handled here", where, exc)
                    self.fenced_at = self._clock()
                    return Outcome.FENCED
                if action is Verdict.PARK:
                    raise _Refused(exc) from exc
                if action is Verdict.RESTART and self.on_producer_dead is not None:
                    log.warning(
                        "%s: the transactional producer is dead (%r): replaced; the partition replays "
                        "from its committed offset",
                        where,
                        exc,
                    )
                    self._closed = True
                    return Outcome.ABANDONED
                if action in (Verdict.FAIL, Verdict.RESTART):
                    raise TransactionFailedError(
                        f"transaction of {where} up to offset {offset} failed: {exc!r}"
                    ) from exc
                log.warning("%s: transaction failed (%r); retrying in %.2fs", where, exc, delay)
                await self._sleep(delay)
                delay = min(delay * 2, self._max_backoff_s)

    @staticmethod
    def _resolve(batches: Sequence[SubBatch], outcome: Outcome) -> None:
        for batch in batches:
            if not batch.done.done():
                batch.done.set_result(outcome)


class _Refused(Exception):
    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error
