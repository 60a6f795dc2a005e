"""Running one stage: a consumer-group member that takes whole batches from its topic.

A worker has one aiokafka consumer in the group ``CHAT_WORKER_APP_ID``, subscribed to every
stage's topic, so a partition is owned by exactly one worker at a time (one group, not one per
stage: a group join costs a rebalance timeout, and the embedded broker serialises joins). The
consumer fetches every assigned partition in the background; each stage's runner takes the
records of its own topic's partitions. The loop, per batch:

1. ``getmany(*partitions)`` returns what the consumer has prefetched for this stage (up to
   ``batch_max`` records, offset order within each partition);
2. the stage handles the batch (:meth:`BatchProcessor.handle`: decode, store writes, outputs);
3. the outputs are handed to the producer at once (:meth:`BatchProcessor.enqueue`), and the
   loop goes back to 1 without waiting for the broker's acknowledgement: up to
   ``max_in_flight`` batches may await it. Outputs reach the producer in input order, and
   aiokafka keeps one batch in flight per partition, so a key's outputs keep their order.
   (Only a batch whose send fails is sent again later, behind newer ones: consumers are
   idempotent, and the edge syncs the gap.)

**At-least-once.** An input offset is committed only after every output of its batch *and of
every earlier batch* was acknowledged by the broker (batches complete in FIFO order here):
every ``commit_interval_s``, when partitions are revoked, and on stop. A worker killed at any
moment replays from the last committed offsets; every stage is idempotent (same seqs, same
output ids), so a replay changes nothing.

(On real Kafka the worker runs :class:`TransactionalStageRunner` instead, which commits outputs
and offsets together: ``transactional_runner.py``.)

**Rebalances.** After a rebalance aiokafka restarts every assigned partition from its committed
offset. Revocation first waits for the batches in flight and commits them. A batch handled while a
rebalance happened is neither sent nor committed (whoever owns its partitions now replays it),
and the stage's caches are reset (``on_assigned``) before the first batch of the new assignment,
since another worker may have advanced the counters meanwhile.

Why this is the default and not Faust agents: Faust hands records to an agent one at a time
(conductor, stream queue, per-event acks), which cost about 60 % of the worker's event loop and
left batches of ~6 records; see docs/benchmarks.md, "Where the time goes: worker". The same stages
do run as Faust agents with ``CHAT_WORKER_ENGINE=faust`` (``faust_app.py``, ``faust_agent.py``:
the same batches, FIFO acks and rebalance rules), for the figures in "Faust engine (issue 14)".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from chat_events.kafka.idle_pacer import note_progress
from chat_events.streams.records import SourceRecord, StageResult
from chat_events.streams.stage import BatchProcessor, is_retriable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunnerTimings:
    batch_max: int = 500
    poll_timeout_s: float = 0.5
    """Longest ``getmany`` wait (only bounds how soon a stop is noticed: records return at once)."""
    commit_interval_s: float = 0.5
    drain_timeout_s: float = 10.0
    """How long a revocation or a stop waits for the batches in flight."""
    max_in_flight: int = 4
    """Batches whose outputs may await the broker's acknowledgement at once."""


@dataclass(frozen=True, slots=True)
class _InFlight:
    """A batch handed to the producer: its acknowledgement, the offsets to commit once it is
    acknowledged, and the epoch it was handled in (offsets of an older epoch are never committed)."""

    task: asyncio.Task[StageResult]
    offsets: dict[TopicPartition, int]
    epoch: int


def next_offsets(records: list[SourceRecord]) -> dict[TopicPartition, int]:
    """The offset to commit per partition once ``records`` are done: the last offset + 1."""
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
    return offsets


class StageRunner:
    """One stage's consumer loop (see the module docstring). ``run()`` until cancelled."""

    def __init__(
        self,
        name: str,
        topic: str,
        processor: BatchProcessor,
        consumer: AIOKafkaConsumer,
        *,
        timings: RunnerTimings = RunnerTimings(),
        on_assigned: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self.topic = topic
        self.consumer = consumer
        self.assigned = asyncio.Event()
        """Set once the runner holds its first assignment (possibly empty)."""
        self._processor = processor
        self._timings = timings
        self._on_assigned = on_assigned
        self._epoch = 0
        """Bumped by every revocation and assignment: work from an older epoch is stale."""
        self._reset_epoch = 0
        self._in_flight: deque[_InFlight] = deque()
        """Batches sent and not yet acknowledged (or not yet collected), oldest first."""
        self._revoking = False
        self._enqueuing = False
        self._done: dict[TopicPartition, int] = {}
        """Next offset per partition whose outputs are all acknowledged (to commit)."""
        self._committed: dict[TopicPartition, int] = {}
        self._commit_lock = asyncio.Lock()

    async def run(self) -> None:
        """Consume until cancelled. A batch whose outputs could not be sent even to the
        dead-letter topic ends the loop with that error (the worker exits; nothing of that batch
        was committed, so a restarted worker replays it)."""
        committer = asyncio.ensure_future(self._commit_periodically())
        try:
            while True:
                await self._run_once()
        finally:
            committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await committer
            with contextlib.suppress(Exception):  # the loop's own error is the one to report
                await self._drain()

    def partitions(self) -> list[TopicPartition]:
        """This stage's partitions among the worker's current assignment."""
        return [tp for tp in self.consumer.assignment() if tp.topic == self.topic]

    async def _run_once(self) -> None:
        self._collect()  # raises a batch that failed for good, even when no records arrive
        partitions = self.partitions()
        if not partitions:  # nothing of this topic assigned (getmany() without any means "all")
            await asyncio.sleep(self._timings.poll_timeout_s)
            fetched = {}
        else:
            fetched = await self.consumer.getmany(
                *partitions, timeout_ms=int(self._timings.poll_timeout_s * 1000), max_records=self._timings.batch_max
            )
        epoch = self._epoch
        if self._reset_epoch != epoch:  # first batch of a new assignment: caches may be stale
            self._reset_epoch = epoch
            await self._after_assignment()
        if not fetched or epoch != self._epoch:
            return
        records = [
            SourceRecord(r.topic, r.partition, r.offset, r.key, r.value) for batch in fetched.values() for r in batch
        ]
        result = await self._processor.handle(records)
        note_progress(self.consumer)  # a long batch is not the consumer going idle
        self._collect()
        while len(self._in_flight) >= self._timings.max_in_flight and self._current(epoch):
            await asyncio.wait([self._in_flight[0].task])  # never cancels it, never raises
            self._collect()
        if not self._current(epoch):  # a rebalance began: whoever owns the partitions replays them
            log.info("%s: rebalanced while handling %d records; the new owner replays them", self.name, len(records))
            return
        self._enqueuing = True
        try:
            acknowledged = await self._processor.enqueue(result, records)  # in input order, now
        finally:
            self._enqueuing = False
        self._in_flight.append(_InFlight(asyncio.ensure_future(acknowledged), next_offsets(records), epoch))

    def _current(self, epoch: int) -> bool:
        return epoch == self._epoch and not self._revoking

    async def _after_assignment(self) -> None:
        """The stage's reset hook, retried while it fails retriably (e.g. the store is down)."""
        if self._on_assigned is None:
            return
        delay = 0.05
        while True:
            try:
                await self._on_assigned()
                return
            except Exception as exc:
                if not is_retriable(exc):
                    raise
                log.warning("%s: reset after assignment failed (%s); retrying in %.2fs", self.name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _collect(self) -> None:
        """Move the offsets of the acknowledged batches at the head of the queue to ``_done``
        (FIFO: a later batch counts only once every earlier one is done). A batch that failed for
        good (not even its dead letters could be sent) stays at the head and its error is raised,
        again on every call: nothing after it is ever committed, and the loop ends with it."""
        while self._in_flight and self._in_flight[0].task.done():
            head = self._in_flight[0]
            head.task.result()
            self._in_flight.popleft()
            if head.epoch == self._epoch:
                self._done.update(head.offsets)

    async def _drain(self) -> None:
        """Wait (bounded) until every batch in flight, and an enqueue under way, is acknowledged
        and collected; then commit what is done. Nothing is cancelled: a batch still unacknowledged
        at the deadline is left to finish on its own, uncommitted (replayed later)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timings.drain_timeout_s
        while (self._in_flight or self._enqueuing) and loop.time() < deadline:
            pending = [entry.task for entry in self._in_flight if not entry.task.done()]
            if pending:
                await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()))
            else:
                await asyncio.sleep(0.01)  # an enqueue under way
            self._collect()
        if self._in_flight or self._enqueuing:
            log.warning(
                "%s: %d batches in flight did not finish in time; replayed later", self.name, len(self._in_flight)
            )
        await self.commit()

    async def commit(self) -> None:
        """Commit the offsets whose outputs are acknowledged. A refused commit (e.g. the group
        rebalanced meanwhile) is logged: those records are replayed, which changes nothing."""
        async with self._commit_lock:
            assigned = set(self.partitions())
            pending = {
                tp: offset for tp, offset in self._done.items() if tp in assigned and self._committed.get(tp) != offset
            }
            if not pending:
                return
            try:
                await self.consumer.commit(pending)
            except KafkaError as exc:
                log.warning(
                    "%s: commit of %d partitions failed (%r); they will be replayed", self.name, len(pending), exc
                )
                return
            self._committed.update(pending)

    async def _commit_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._timings.commit_interval_s)
            with contextlib.suppress(Exception):  # a failed batch stays at the head; the loop raises it
                self._collect()
            await self.commit()

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Before giving partitions up: stop new work, let the batches in flight finish, commit
        them (the partitions are still ours until this returns), then forget this epoch."""
        self._revoking = True
        try:
            await self._drain()
        except Exception:
            log.exception("%s: a batch in flight failed during a rebalance; it will be replayed", self.name)
        finally:
            self._epoch += 1
            self._in_flight.clear()  # anything left finishes on its own and is never committed
            self._done.clear()
            self._committed.clear()
            self._revoking = False

    def on_assigned(self, assigned: set[TopicPartition]) -> None:
        self._epoch += 1
        self.assigned.set()
        mine = sorted(tp.partition for tp in assigned if tp.topic == self.topic)
        log.info("%s: assigned partitions %s of %s", self.name, mine, self.topic)


class RebalanceFanout(ConsumerRebalanceListener):  # type: ignore[misc]
    """The shared consumer's rebalance listener: tells every runner."""

    def __init__(self, runners: list[StageRunner]) -> None:
        self._runners = runners

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await asyncio.gather(*(runner.on_revoked(revoked) for runner in self._runners))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        for runner in self._runners:
            runner.on_assigned(assigned)
