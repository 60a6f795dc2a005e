"""One stage as a Faust agent: the batch pipeline between ``noack_take`` and the acks.

The Faust engine (``CHAT_WORKER_ENGINE=faust``, ``faust_app.py``) runs every stage as one
faust-streaming agent, concurrency 1, over :class:`StageAgent`. Per batch:

1. ``stream.noack_take(batch_max, within)`` yields the events that arrived (nothing is acked
   by Faust: ``noack_take`` leaves every ack to us);
2. the stage handles them (:meth:`BatchProcessor.handle`: decode, store writes, retries,
   dead letters: the native runner's policy, unchanged);
3. the outputs go to the project's publisher at once (:meth:`BatchProcessor.enqueue`), and the
   agent goes back to 1: up to ``max_in_flight`` batches may await the broker's acknowledgement;
4. a batch's events are acked only once its outputs *and those of every earlier batch* are
   acknowledged (FIFO): Faust commits an offset once every event before it is acked.

Faust's offset traps, and why none of them applies here (tests: ``test_faust_agent.py``):

* #606 (a slow head record committed over with concurrency > 1) and #312: Faust's committer
  takes the first run of consecutive acked offsets without checking that it starts at the
  committed offset (its check allows a gap of one, and is skipped while the committed offset is
  0). Here one agent per topic (concurrency 1) acks a partition's events in offset order and
  only whole FIFO prefixes of batches, so an acked offset never has an unacked one before it.
* #527/#604 (offsets skipped after an agent exception or a rebalance) and #315 (``events()``
  skipping the failing offset): an exception escaping an agent makes Faust restart it at the
  consumer's position, past the unacked events, whose later neighbours then get acked and
  committed. No exception escapes :meth:`StageAgent.take`: the stage's retriable failures are
  retried inside the processor, its bad records dead-lettered; a batch that fails for good (not
  even its dead letters could be sent) stays at the head of the queue, nothing after it is ever
  acked, and ``on_failure`` stops the worker (a restart replays from the committed offset).
* Rebalances: a batch taken before a rebalance is neither sent nor acked (:class:`Rebalances`
  epochs, as in the native runner); revocation first lets the batches in flight finish and acks
  them (:meth:`StageAgent.drain`) before Faust forgets the revoked partitions' acks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chat_events.streams.records import SourceRecord, StageResult
from chat_events.streams.stage import BatchProcessor, is_retriable

log = logging.getLogger(__name__)


class Message(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes: ...


class Event(Protocol):
    """What :meth:`StageAgent.take` needs of a ``faust.Event``."""

    @property
    def message(self) -> Message: ...

    def ack(self) -> bool: ...


@dataclass(slots=True)
class Rebalances:
    """The app's rebalance epoch, shared by its agents: bumped when a revocation ends and when
    an assignment arrives. Work taken in an older epoch is stale: never sent, never acked."""

    epoch: int = 0
    revoking: bool = False
    """From a revocation's start until the next assignment: nothing new is sent. Events keep
    arriving in that window (taken into ``noack_take``'s buffer before the revocation); acked
    there, Faust (whose committed offset for the partition is unknown until the assignment)
    would commit their offsets over the records it dropped from the agents' queues: lost."""
    generation: int | None = None
    """The consumer group generation of the current assignment: an event fetched in an older
    one (still in a buffer after the rebalance) is dropped, for the same reason."""
    stopping: bool = False
    """The worker is stopping: nothing new is sent (the batches in flight are drained)."""

    def current(self, epoch: int) -> bool:
        return epoch == self.epoch and not self.revoking and not self.stopping


@dataclass(slots=True)
class _InFlight:
    acknowledged: asyncio.Task[StageResult]
    events: Sequence[Event]
    epoch: int


@dataclass(slots=True)
class AgentTimings:
    batch_max: int = 500
    within_s: float = 0.01
    """How long ``noack_take`` waits for a batch to fill (each hop's added latency at low load)."""
    max_in_flight: int = 4
    drain_timeout_s: float = 10.0


@dataclass(slots=True)
class StageAgent:
    """One stage's pipeline (module docstring). ``run(stream)`` is the Faust agent's body."""

    name: str
    processor: BatchProcessor
    rebalances: Rebalances
    timings: AgentTimings = field(default_factory=AgentTimings)
    on_assigned: Callable[[], Awaitable[None]] | None = None
    """The stage's cache reset, run before the first batch of every new epoch."""
    on_failure: Callable[[BaseException], None] = lambda exc: None
    """Called once, with the error of a batch that failed for good: the worker must stop."""
    failure: BaseException | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while the stage handles a batch or resets (stages are not re-entrant)."""
    _in_flight: deque[_InFlight] = field(default_factory=deque)
    _reset_epoch: int = -1

    async def run(self, stream: Any) -> None:
        """The agent: batches from ``stream.noack_take`` until cancelled. After a failure it
        takes nothing more and waits for the worker to stop it (returning or raising would have
        Faust restart the agent past the unacked events: #527)."""
        async for events in stream.noack_take(self.timings.batch_max, within=self.timings.within_s):
            await self.take(events)
            del events  # a dropped batch must not stay referenced (Faust tracks unacked events weakly)
            if self.failure is not None:
                break
        await asyncio.Event().wait()  # until cancelled by the worker's stop

    async def take(self, events: Sequence[Event]) -> None:
        """Handle one batch and put it in flight; never raises (a failure goes to ``on_failure``)."""
        try:
            await self._take(events)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handle() retries and dead-letters: only a reset can get here
            self._fail(exc)

    async def _take(self, events: Sequence[Event]) -> None:
        self._collect()
        if self.failure is not None or not events:
            return
        epoch = self.rebalances.epoch
        await self.reset_if_stale(epoch)
        if not self.rebalances.current(epoch):
            return
        events = [event for event in events if self._fresh(event)]
        if not events:
            return
        records = [_record(event) for event in events]
        async with self.lock:
            result = await self.processor.handle(records)
        while len(self._in_flight) >= self.timings.max_in_flight and self.rebalances.current(epoch):
            await asyncio.wait([self._in_flight[0].acknowledged])
            self._collect()
        if not self.rebalances.current(epoch) or self.failure is not None:
            log.info("%s: rebalanced while handling %d records; the new owner replays them", self.name, len(records))
            return
        acknowledged = asyncio.ensure_future(await self.processor.enqueue(result, records))
        self._in_flight.append(_InFlight(acknowledged, events, epoch))
        acknowledged.add_done_callback(lambda _: self._collect())

    async def reset_if_stale(self, epoch: int) -> None:
        """Run the stage's reset hook once per epoch (retried while it fails retriably)."""
        if self._reset_epoch == epoch or self.on_assigned is None:
            self._reset_epoch = epoch
            return
        async with self.lock:
            if self._reset_epoch == epoch:
                return
            delay = 0.05
            while True:
                try:
                    await self.on_assigned()
                    break
                except Exception as exc:
                    if not is_retriable(exc):
                        raise
                    log.warning("%s: reset after assignment failed (%s); retrying in %.2fs", self.name, exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
            self._reset_epoch = epoch

    def _collect(self) -> None:
        """Ack the events of the acknowledged batches at the head of the queue, oldest first. A
        batch that failed for good stays at the head: nothing after it is ever acked."""
        while self._in_flight and self._in_flight[0].acknowledged.done() and self.failure is None:
            head = self._in_flight[0]
            if head.acknowledged.cancelled():
                self._fail(RuntimeError(f"{self.name}: a batch's send was cancelled"))
                return
            if (exc := head.acknowledged.exception()) is not None:
                self._fail(exc)
                return
            self._in_flight.popleft()
            if head.epoch == self.rebalances.epoch:
                for event in head.events:
                    event.ack()

    def _fail(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
            log.error(
                "%s: a batch failed for good (%r); stopping the worker, nothing after it is acked", self.name, exc
            )
            self.on_failure(exc)

    def _fresh(self, event: Event) -> bool:
        """Whether ``event`` was fetched in the current assignment's generation (Faust's stream
        skips older ones at its entry, but not those already in ``noack_take``'s buffer)."""
        fetched_in = getattr(event.message, "generation_id", None)
        return fetched_in is None or self.rebalances.generation is None or fetched_in == self.rebalances.generation

    def reset_done(self, epoch: int) -> bool:
        """Whether the stage's reset hook ran for ``epoch``."""
        return self._reset_epoch == epoch

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def drain(self) -> None:
        """Wait (bounded) for the batches in flight and ack them (on revocation and on stop).
        What is still unacknowledged at the deadline is left unacked (replayed later)."""
        pending = [entry.acknowledged for entry in self._in_flight if not entry.acknowledged.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=self.timings.drain_timeout_s)
            if still:
                log.warning("%s: %d batches in flight did not finish in time; replayed later", self.name, len(still))
        with contextlib.suppress(Exception):
            self._collect()

    def forget(self) -> None:
        """After a revocation: whatever is still in flight belongs to the old epoch."""
        self._in_flight.clear()


def _record(event: Event) -> SourceRecord:
    m = event.message
    return SourceRecord(m.topic, m.partition, m.offset, m.key, m.value)
