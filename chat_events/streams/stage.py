"""Running one stage over a batch: decode, handle, retry, dead-letter, send.

The error policy lives here so every agent stays thin, and no exception escapes an agent:

* a record that does not decode, or carries an event the stage does not take, is rejected;
* a *retriable* failure (store or broker unavailable, a stale seq counter) retries the whole
  batch with capped exponential backoff, for as long as it takes: the partition pauses rather
  than losing or dead-lettering good messages during an outage;
* any other failure is isolated by re-running the batch record by record; the records that
  still fail are rejected with the error's code;
* rejected records go to ``chat.dead-letter`` (raw bytes + reason), and the stream moves on.

Only when :meth:`BatchProcessor.process` returns are the outputs (and dead letters) acknowledged
by the broker; the agent acks its input offsets after that (at-least-once). Every handler is
idempotent, so a batch replayed after a crash has the same effect as one run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from aiokafka.errors import KafkaError

from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.errors import ChatEventsError, EventDecodeError
from chat_events.events.factory import new_envelope
from chat_events.events.types import RecordDeadLettered
from chat_events.events.validation import MAX_DEAD_LETTER_BYTES
from chat_events.streams.records import Incoming, Output, Reject, SourceRecord, StageResult, output_envelope_id

log = logging.getLogger(__name__)
T = TypeVar("T")


class Stage(Protocol):
    """One stream processing step (a plain object: tests call ``handle`` directly)."""

    name: str
    accepts: frozenset[str]
    """Event names this stage takes; anything else on its topic is rejected."""

    async def handle(self, batch: Sequence[Incoming]) -> StageResult: ...

    def reset(self) -> None:
        """Forget cached state (counters) after a failure or a rebalance."""


class OutputSink(Protocol):
    async def send_outputs(self, outputs: Sequence[Output]) -> None:
        """Send all and return once the broker acknowledged every one."""

    async def enqueue_outputs(self, outputs: Sequence[Output]) -> Awaitable[None]:
        """Hand all to the producer now (in order); the awaitable resolves once acknowledged."""


def is_retriable(exc: BaseException) -> bool:
    if isinstance(exc, ChatEventsError | KafkaError):
        return bool(exc.retriable)
    return isinstance(exc, OSError | TimeoutError | ConnectionError)


def error_code(exc: BaseException) -> str:
    return exc.code if isinstance(exc, ChatEventsError) else f"unexpected_{type(exc).__name__}"


class BatchProcessor:
    """Applies the error policy above around one :class:`Stage`."""

    def __init__(
        self,
        stage: Stage,
        codec: AvroEnvelopeCodec,
        sink: OutputSink,
        *,
        dead_letter_topic: str,
        max_backoff_s: float = 5.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._stage = stage
        self._codec = codec
        self._sink = sink
        self._dead_letter_topic = dead_letter_topic
        self._max_backoff_s = max_backoff_s
        self._sleep = sleep

    async def process(self, records: Sequence[SourceRecord]) -> StageResult:
        """Handle ``records`` completely; returns what was sent (for tests and metrics)."""
        return await self.send(await self.handle(records), records)

    async def handle(self, records: Sequence[SourceRecord]) -> StageResult:
        """First half of :meth:`process`: decode and run the stage (its store writes included),
        retrying outages; the result holds the outputs and the rejected records, nothing sent."""
        items, rejects = self._decode(records)
        result = await self._handle(items) if items else StageResult()
        result.rejects[:0] = rejects
        return result

    async def enqueue(self, result: StageResult, records: Sequence[SourceRecord]) -> Awaitable[StageResult]:
        """:meth:`send` in two steps, for pipelining: the outputs go to the producer now, in call
        order, and the returned awaitable resolves once the broker acknowledged them. If the
        first attempt fails (or cannot even be enqueued), it falls back to :meth:`send` — retrying,
        or parking the inputs — which may put these outputs after a later batch's; every consumer
        is idempotent and the edge syncs a gap, so that only happens on a broker failure."""
        outputs = self.outputs_of(result)
        acknowledged: Awaitable[None] | None = None
        if outputs:
            try:
                acknowledged = await self._sink.enqueue_outputs(outputs)
            except Exception as exc:
                log.warning("%s: enqueue failed (%s); sending with retries", self._stage.name, exc)
                return self.send(result, records)

        async def done() -> StageResult:
            if acknowledged is None:
                return result
            try:
                await acknowledged
            except Exception as exc:
                log.warning("%s: send failed (%s); sending again with retries", self._stage.name, exc)
                return await self.send(result, records)
            return result

        return done()

    async def send(self, result: StageResult, records: Sequence[SourceRecord]) -> StageResult:
        """Second half of :meth:`process`: send ``result``'s outputs and dead letters, and return
        once the broker acknowledged all of them. Outputs the broker refuses for good park the
        batch's input ``records`` in the dead-letter topic instead."""
        outputs = self.outputs_of(result)
        if not outputs:
            return result
        try:
            await self._retrying(lambda: self._sink.send_outputs(outputs), "send", reset=False)
        except Exception as exc:  # e.g. an output the broker refuses (too large): park the inputs
            result = self.parked(records, exc)
            parked = self.outputs_of(result)
            await self._retrying(lambda: self._sink.send_outputs(parked), "send", reset=False)
        return result

    def outputs_of(self, result: StageResult) -> list[Output]:
        """Everything ``result`` sends: its outputs, then a dead letter per rejected record."""
        return result.outputs + [self._dead_letter(reject) for reject in result.rejects]

    def parked(self, records: Sequence[SourceRecord], exc: BaseException) -> StageResult:
        """What replaces a result whose outputs the broker refused for good: every input record
        of the batch rejected (dead-lettered) with ``exc``'s code, and nothing else."""
        log.error(
            "%s: outputs refused (%s); dead-lettering the batch's %d records", self._stage.name, exc, len(records)
        )
        return StageResult(rejects=[Reject(record, error_code(exc), f"outputs refused: {exc}") for record in records])

    def _decode(self, records: Sequence[SourceRecord]) -> tuple[list[Incoming], list[Reject]]:
        items: list[Incoming] = []
        rejects: list[Reject] = []
        for record in records:
            try:
                envelope = self._codec.decode(record.value)
            except EventDecodeError as exc:
                rejects.append(Reject(record, exc.code, str(exc)))
                continue
            if envelope.name not in self._stage.accepts:
                rejects.append(Reject(record, "unexpected_event", f"{self._stage.name} does not take {envelope.name}"))
                continue
            items.append(Incoming(record, envelope))
        return items, rejects

    async def _handle(self, items: Sequence[Incoming]) -> StageResult:
        try:
            return await self._retrying(lambda: self._stage.handle(items), "handle")
        except Exception as exc:  # non-retriable: find the records that cause it
            if len(items) == 1:
                log.warning("%s: rejecting %s: %s", self._stage.name, _where(items[0].record), exc)
                return StageResult(rejects=[Reject(items[0].record, error_code(exc), str(exc) or repr(exc))])
            log.warning("%s: batch of %d failed (%s); retrying record by record", self._stage.name, len(items), exc)
            result = StageResult()
            for item in items:
                result.extend(await self._handle([item]))
            return result

    async def _retrying(self, attempt: Callable[[], Awaitable[T]], what: str, *, reset: bool = True) -> T:
        """Retry ``attempt`` while it fails retriably. ``reset``: forget the stage's cached state
        after each failure (a failed handle may leave counters ahead of the store; a failed send
        changes nothing in the stage, and the next batch may be in its handle meanwhile)."""
        delay = 0.05
        while True:
            try:
                return await attempt()
            except Exception as exc:
                if reset:
                    self._stage.reset()
                if not is_retriable(exc):
                    raise
                log.warning(
                    "%s: %s failed (%s: %s); retrying in %.2fs", self._stage.name, what, type(exc).__name__, exc, delay
                )
                await self._sleep(delay)
                delay = min(delay * 2, self._max_backoff_s)

    def _dead_letter(self, reject: Reject) -> Output:
        record = reject.record
        room = MAX_DEAD_LETTER_BYTES - len(record.key or b"")
        value, reason = record.value, reject.reason
        if len(value) > room:  # keep the dead letter under Kafka's default 1 MiB record limit
            value, reason = value[:room], f"{reason} (value truncated from {len(record.value)} bytes)"
        event = RecordDeadLettered(
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            stage=self._stage.name,
            error_code=reject.error_code,
            reason=reason[:1000],
            key=record.key,
            value=value,
        )
        source_id = f"{record.topic}/{record.partition}/{record.offset}"
        envelope = new_envelope(event, envelope_id=output_envelope_id(source_id, self._stage.name, "dead-letter"))
        return Output(self._dead_letter_topic, record.topic.encode(), envelope)


def _where(record: SourceRecord) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"
