"""A broker that lost a partition's log under a running worker: notice it and read from the start.

The embedded broker keeps its logs in memory. Killed and restarted on the same port, it comes
back with empty partitions while the worker's consumer still holds its old positions (and may
even commit them to the new broker). Apache Kafka answers a fetch past the log end with
OFFSET_OUT_OF_RANGE and aiokafka resets the position (``auto_offset_reset``); the embedded
broker answers it with no records and no error, so the consumer would wait at its old position
until the new log grew past it, skipping every record before: messages acknowledged by the
broker and never stored or delivered.

:class:`LogResetWatch` runs beside the stage runners on the worker's one consumer: every
``interval_s`` it compares each assigned partition's position with its end, and a partition
whose position is past the end is sought to its beginning and logged at ERROR. Every stage is
idempotent, so reading a partition again changes nothing that was already done.

The end is the high watermark of the last fetch response (no request: that is what the broker
said about the log the consumer is reading), confirmed by a ListOffsets request before acting.
The embedded broker's ListOffsets answers the base offset of the last batch + 1, below the real
end, so it is never used on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError

log = logging.getLogger(__name__)
CHECK_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class PastEnd:
    """A partition whose consumer position is past the end of its log."""

    tp: TopicPartition
    position: int
    end: int


def past_end(
    positions: Mapping[TopicPartition, int],
    highwaters: Mapping[TopicPartition, int | None],
    listed_ends: Mapping[TopicPartition, int] | None = None,
) -> list[PastEnd]:
    """The partitions whose position is greater than their end (sorted). A partition with no
    known high watermark yet is not judged. With ``listed_ends`` (the broker's ListOffsets
    answer) a partition counts only if its position is past that end too, and the larger of the
    two ends is reported. Position == end is a consumer that is caught up."""
    out: list[PastEnd] = []
    for tp, position in positions.items():
        highwater = highwaters.get(tp)
        if highwater is None or position <= highwater:
            continue
        end = highwater
        if listed_ends is not None:
            listed = listed_ends.get(tp)
            if listed is None or position <= listed:
                continue
            end = max(end, listed)
        out.append(PastEnd(tp, position, end))
    return sorted(out, key=lambda p: (p.tp.topic, p.tp.partition))


class LogResetWatch:
    """The periodic check over the worker's consumer (see the module docstring). ``run()``
    until cancelled; a round that fails is logged and the next one tries again."""

    def __init__(self, consumer: AIOKafkaConsumer, *, interval_s: float = CHECK_INTERVAL_S) -> None:
        self._consumer = consumer
        self._interval_s = interval_s

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.check()
            except Exception:
                log.exception("log-end check failed; retrying in %.1fs", self._interval_s)

    async def check(self) -> list[PastEnd]:
        """One round: the partitions found past their end, each sought to its beginning."""
        positions, highwaters = await self._observe()
        suspects = past_end(positions, highwaters)
        if not suspects:
            return []
        try:
            listed = await self._consumer.end_offsets([s.tp for s in suspects])
        except (KafkaError, TimeoutError):  # the broker is not back yet: judge next round
            return []
        confirmed = past_end(positions, highwaters, listed)
        for p in confirmed:
            log.error(
                "%s[%d]: consumer position %d is past the log end %d: the broker lost this "
                "partition's log (restarted empty?); reading it again from its beginning",
                p.tp.topic,
                p.tp.partition,
                p.position,
                p.end,
            )
        if confirmed:
            with contextlib.suppress(IllegalStateError):  # revoked meanwhile: the new owner reads it
                await self._consumer.seek_to_beginning(*(p.tp for p in confirmed))
        return confirmed

    async def _observe(self) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int | None]]:
        positions: dict[TopicPartition, int] = {}
        highwaters: dict[TopicPartition, int | None] = {}
        for tp in self._consumer.assignment():
            try:
                if self._consumer.highwater(tp) is None:  # nothing fetched yet
                    continue
                # at once when the position is valid; a partition being reset is skipped
                position = await asyncio.wait_for(self._consumer.position(tp), 0.1)
                # read after the position, so never older than the fetch that delivered the
                # records behind it: on an intact log the position is never past it
                highwater = self._consumer.highwater(tp)
            except (AssertionError, IllegalStateError, KafkaError, TimeoutError):  # revoked (aiokafka asserts)
                continue
            positions[tp], highwaters[tp] = position, highwater
        return positions, highwaters
