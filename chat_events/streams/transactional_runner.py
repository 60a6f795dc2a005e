"""The stage runner in transactional mode (real Kafka): exactly-once outputs.

Same consumer, same stages, same error policy as :class:`StageRunner`; what differs is the unit
of work and who commits. A stage builds its outputs across a whole batch, so they cannot be
attributed to input partitions afterwards: each fetched partition's records are handled as a
sub-batch of their own (``processor.handle(records_of_tp)``), and that sub-batch's outputs and
dead letters go out in the partition's transaction together with the partition's next offset
(``transactional.py``). The consumer never commits. Handling stays one sub-batch at a time per
stage (stages are not re-entrant); the transactions of different partitions run concurrently, up
to ``max_open`` sub-batches awaiting theirs.

Rebalances work as in :class:`StageRunner`: revocation waits (bounded) for the sub-batches in
flight, a sub-batch handled across a rebalance is dropped (the partition's owner replays it), and
:class:`TransactionalRebalance` has the :class:`ProducerPool` stop the revoked partitions'
producers and start the assigned ones'. A partition whose producer was fenced is no longer
fetched; if it is still assigned here after ``fenced_grace_s`` (no other worker took it: its
transaction timed out), the runner fails, and the worker with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError

from chat_events.streams.producer_pool import ProducerPool
from chat_events.streams.records import SourceRecord
from chat_events.streams.runner import RunnerTimings, StageRunner
from chat_events.streams.stage import BatchProcessor
from chat_events.streams.transactional import Outcome, TransactionFailedError, commit_offset, fenced_for_good

log = logging.getLogger(__name__)
DEFAULT_TIMINGS = RunnerTimings()


@dataclass(frozen=True, slots=True)
class TransactionTimings:
    max_open: int = 32
    """Sub-batches handled and awaiting their transaction, over all partitions of a stage."""
    fenced_grace_s: float = 20.0
    """How long a fenced partition may stay assigned here before the runner gives up."""
    start_wait_s: float = 10.0
    """How long an assignment waits for its producers before the rest start in the background."""


class TransactionalStageRunner(StageRunner):
    """One stage's consumer loop in transactional mode (see the module docstring)."""

    def __init__(
        self,
        name: str,
        topic: str,
        processor: BatchProcessor,
        consumer: AIOKafkaConsumer,
        pool: ProducerPool,
        *,
        timings: RunnerTimings = DEFAULT_TIMINGS,
        transactions: TransactionTimings = TransactionTimings(),
        on_assigned: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(name, topic, processor, consumer, timings=timings, on_assigned=on_assigned)
        self._pool = pool
        self._txn_timings = transactions
        self._open: set[asyncio.Future[Outcome]] = set()

    async def run(self) -> None:
        """Consume until cancelled; a sub-batch that failed for good ends the loop with its error."""
        try:
            while True:
                await self._run_once()
        finally:
            with contextlib.suppress(Exception):  # the loop's own error is the one to report
                await self._drain()

    async def _run_once(self) -> None:
        self._collect()
        self._pool.check()
        self._check_fenced()
        partitions = [tp for tp in self.partitions() if self._usable(tp)]
        if not partitions:
            await asyncio.sleep(self._timings.poll_timeout_s)
            fetched = {}
        else:
            fetched = await self.consumer.getmany(
                *partitions, timeout_ms=int(self._timings.poll_timeout_s * 1000), max_records=self._timings.batch_max
            )
        epoch = self._epoch
        # as the epoch, read once the records are returned: what a partition's producer was then.
        # One replaced later (died while these were handled) is re-sought: its records are replayed
        held = {tp: self._pool.get(tp) for tp in fetched}
        if self._reset_epoch != epoch:
            self._reset_epoch = epoch
            await self._after_assignment()
        if not fetched or epoch != self._epoch:
            return
        try:  # after the records returned: also past the markers that follow them
            positions = {tp: await self.consumer.position(tp) for tp in fetched}
        except IllegalStateError:  # revoked meanwhile
            return
        for tp, batch in fetched.items():
            if not batch:
                continue
            records = [SourceRecord(r.topic, r.partition, r.offset, r.key, r.value) for r in batch]
            result = await self._processor.handle(records)
            await self._wait_for_room(epoch)
            transactions = self._pool.get(tp)
            if not self._current(epoch):
                log.info("%s: rebalanced while handling %d records; the owner replays them", self.name, len(records))
                return
            if transactions is None or transactions is not held.get(tp):  # its producer was replaced
                log.info(
                    "%s: %s[%d] restarted while handling %d records; replayed",
                    self.name,
                    tp.topic,
                    tp.partition,
                    len(records),
                )
                continue
            self._open.add(transactions.submit(records, result, commit_offset(records, positions[tp])))

    def _usable(self, tp: TopicPartition) -> bool:
        transactions = self._pool.get(tp)
        return transactions is not None and transactions.usable

    async def _wait_for_room(self, epoch: int) -> None:
        while len(self._open) >= self._txn_timings.max_open and self._current(epoch):
            await asyncio.wait(self._open, return_when=asyncio.FIRST_COMPLETED)  # never raises
            self._collect()

    def _collect(self) -> None:
        """Forget the sub-batches whose transaction ended; raise one that failed for good."""
        done = {future for future in self._open if future.done()}
        self._open -= done
        for future in done:
            if not future.cancelled() and future.exception() is not None:
                self._open.add(future)  # stays: raised again on every call, the loop ends with it
                future.result()

    def _check_fenced(self) -> None:
        now = asyncio.get_running_loop().time()
        assigned = set(self.partitions())
        for transactions in self._pool.held():
            fenced_at = transactions.fenced_at
            if fenced_at is None or transactions.tp not in assigned:
                continue
            if fenced_for_good(fenced_at, now, self._txn_timings.fenced_grace_s):
                tp = transactions.tp
                raise TransactionFailedError(
                    f"{tp.topic}[{tp.partition}] was fenced {now - fenced_at:.0f}s ago and is still assigned "
                    "to this worker (its transaction timed out?); restarting replays it"
                )

    async def _drain(self) -> None:
        """Commit the deferred offsets, then wait (bounded) for the sub-batches in flight.
        Nothing to commit afterwards: each transaction committed its own offsets; one still open
        at the deadline is left (its producer is stopped on release, and the partition's next
        owner aborts it)."""
        for transactions in self._pool.held():
            if transactions.tp.topic == self.topic and (flushed := transactions.flush()) is not None:
                self._open.add(flushed)
        pending = [future for future in self._open if not future.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=self._timings.drain_timeout_s)
            if still:
                log.warning("%s: %d sub-batches did not commit in time; replayed later", self.name, len(still))
        self._collect()

    async def commit(self) -> None:
        """Nothing to do: offsets are committed by the transactions."""

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        self._revoking = True
        try:
            await self._drain()
        except Exception:
            log.exception("%s: a sub-batch failed during a rebalance; it will be replayed", self.name)
        finally:
            self._epoch += 1
            self._open.clear()
            self._revoking = False


class TransactionalRebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """The shared consumer's rebalance listener in transactional mode: the runners drain, then
    the pool stops the revoked producers; on assignment the pool starts the new ones (pausing
    their partitions until each producer is up and its committed offset re-read)."""

    def __init__(
        self, runners: list[TransactionalStageRunner], pool: ProducerPool, consumer: AIOKafkaConsumer, *, wait_s: float
    ) -> None:
        self._runners = runners
        self._pool = pool
        self._consumer = consumer
        self._wait_s = wait_s

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await asyncio.gather(*(runner.on_revoked(revoked) for runner in self._runners))
        await self._pool.release(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        for runner in self._runners:
            runner.on_assigned(assigned)
        await self._pool.acquire(self._consumer, assigned, self._wait_s)
