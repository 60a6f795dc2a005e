"""A partition whose consumer position is past its log end (the broker lost the log): the pure
decision, and the periodic check over a fake consumer."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from chat_events.streams.log_reset import LogResetWatch, PastEnd, past_end

A0, A1, B0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)


def test_a_position_past_the_high_watermark_is_past_the_end() -> None:
    positions = {A0: 60, A1: 30, B0: 5}
    highwaters: dict[TopicPartition, int | None] = {A0: 15, A1: 30, B0: 9}
    assert past_end(positions, highwaters) == [PastEnd(A0, 60, 15)]  # caught up (== end) is fine


def test_no_high_watermark_yet_is_no_evidence() -> None:
    assert past_end({A0: 60}, {A0: None}) == []
    assert past_end({A0: 60}, {}) == []


def test_the_broker_listed_end_must_agree() -> None:
    """A ListOffsets answer at or past the position clears the partition; the embedded broker's
    (base offset of the last batch + 1, below the real end) never makes a reset by itself."""
    positions = {A0: 60, A1: 30, B0: 40}
    highwaters: dict[TopicPartition, int | None] = {A0: 15, A1: 10, B0: 40}
    listed = {A0: 2, A1: 30, B0: 3}
    assert past_end(positions, highwaters, listed) == [PastEnd(A0, 60, 15)]
    assert past_end({A0: 60}, {A0: 15}, {}) == []  # no answer for it: judged next round


def test_the_result_is_sorted() -> None:
    positions = {B0: 9, A1: 9, A0: 9}
    assert [p.tp for p in past_end(positions, dict.fromkeys(positions, 0))] == [A0, A1, B0]


class FakeConsumer:
    def __init__(self, positions: dict[TopicPartition, int], highwaters: dict[TopicPartition, int | None]) -> None:
        self.positions = positions
        self.highwaters = highwaters
        self.listed: dict[TopicPartition, int] = {}
        self.list_error: Exception | None = None
        self.seeks: list[tuple[TopicPartition, ...]] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self.positions)

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.highwaters.get(tp)

    async def position(self, tp: TopicPartition) -> int:
        if tp not in self.positions:
            raise AssertionError("not assigned")
        return self.positions[tp]

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        if self.list_error is not None:
            raise self.list_error
        return {tp: self.listed[tp] for tp in tps}

    async def seek_to_beginning(self, *tps: TopicPartition) -> bool:
        self.seeks.append(tps)
        for tp in tps:
            self.positions[tp] = 0
        return True


async def test_the_check_seeks_lost_partitions_to_their_beginning_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = FakeConsumer({A0: 60, A1: 30, B0: 7}, {A0: 15, A1: 30, B0: None})
    consumer.listed = {A0: 1}
    watch = LogResetWatch(consumer)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="chat_events.streams.log_reset"):
        assert await watch.check() == [PastEnd(A0, 60, 15)]
    assert consumer.seeks == [(A0,)]
    (entry,) = caplog.records
    assert entry.levelno == logging.ERROR
    assert "a[0]" in entry.getMessage() and "position 60" in entry.getMessage() and "end 15" in entry.getMessage()
    assert await watch.check() == []  # read from the beginning now: nothing more to do
    assert consumer.seeks == [(A0,)]


async def test_nothing_happens_while_the_broker_cannot_confirm() -> None:
    consumer = FakeConsumer({A0: 60}, {A0: 15})
    consumer.list_error = KafkaConnectionError("down")
    watch = LogResetWatch(consumer)  # type: ignore[arg-type]
    assert await watch.check() == []
    consumer.list_error, consumer.listed = None, {A0: 60}  # the broker says the log does reach 60
    assert await watch.check() == []
    assert consumer.seeks == []


async def test_the_watch_keeps_running_through_failed_rounds(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(FakeConsumer):
        def assignment(self) -> set[TopicPartition]:
            raise RuntimeError("boom")

    watch = LogResetWatch(Broken({}, {}), interval_s=0.01)  # type: ignore[arg-type]
    task = asyncio.ensure_future(watch.run())
    await asyncio.sleep(0.05)
    assert not task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert sum("log-end check failed" in r.getMessage() for r in caplog.records) >= 2
