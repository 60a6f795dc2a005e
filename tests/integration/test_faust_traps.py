"""faust-streaming's offset traps, each in its scenario, on the Faust engine and a real broker.

The worker runs in this process (``run_worker`` with ``CHAT_WORKER_ENGINE=faust``) so that a
test can hold or break one batch of the real stages; everything else is the product's code.

* #606: a slow head record must never be committed over (with concurrency > 1 Faust committed
  the later records' offsets while the head one was still being handled: lost on restart).
* #527/#315: a batch that fails for good (not even its dead letters can be sent) must stop the
  worker with nothing after it committed, and a restart must replay it (Faust restarts a crashed
  agent past its unacked events, and commits their later neighbours).
* #527's rebalance case (and #216/#221, offsets skipped or reordered across a rebalance): a
  second Faust worker joins mid-run and the first then leaves; nothing is lost or stored twice.

The poison-record case of #315 (a record the stage refuses is dead-lettered, never skipped) is
``test_poison_and_unauthorised_records_go_to_dead_letter_and_the_stream_flows`` of the worker
pipeline suite, which runs on both engines.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from chat_events.codec import build_codec
from chat_events.events.types import PersonalChatSent
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget, client_options
from chat_events.producers.publisher import EventPublisher
from chat_events.settings import Settings
from chat_events.store.factory import open_store
from chat_events.store.port import MessageStore
from chat_events.streams.app import PublisherSink
from chat_events.streams.persist_fanout import PersistFanoutStage
from chat_events.streams.records import Incoming, Output, StageResult
from chat_events.streams.worker import run_worker
from chat_events.topics import PERSONAL_CHAT, TopicCatalog
from tests.conftest import make_settings
from tests.integration.store_checks import check_invariants, inbox_count
from tests.integration.traffic import pair_envelopes, pairs_of, send_pairs
from tests.integration.worker_harness import WorkerProcess, wait_until

MESSAGES = 30


def faust_settings(target: KafkaTarget, tmp_path: Path) -> Settings:
    return make_settings(
        target,
        tmp_path,
        worker_app_id=f"w-{uuid.uuid4().hex[:8]}",
        worker_engine="faust",
        topic_partitions=1,  # one partition: every record after the head one is behind it
        worker_session_timeout_s=6.0,
        worker_rebalance_timeout_s=3.0,
    )


@contextlib.asynccontextmanager
async def worker(settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    """The Faust engine in this process until the block ends (then stopped as by SIGTERM)."""
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.ensure_future(run_worker(settings, stop=stop, on_ready=lambda _: ready.set()))
    await asyncio.wait([task, asyncio.ensure_future(ready.wait())], timeout=60, return_when=asyncio.FIRST_COMPLETED)
    assert ready.is_set() or task.done(), "the Faust worker did not become ready"
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait([task], timeout=30)


async def committed_offset(settings: Settings, target: KafkaTarget) -> int | None:
    """The worker group's committed offset of chat.personal-chat[0] (None: nothing committed),
    read by a consumer of the group that never joins it."""
    tp = TopicPartition(TopicCatalog(settings).resolve(PERSONAL_CHAT).name, 0)
    consumer = AIOKafkaConsumer(**client_options(settings, target), group_id=settings.worker_app_id)
    await consumer.start()
    try:
        offset = await consumer.committed(tp)
    finally:
        await consumer.stop()
    return None if offset is None or offset < 0 else int(offset)


async def publish_head_then_rest(
    settings: Settings, target: KafkaTarget, users: list[str]
) -> dict[str, tuple[str, str]]:
    """The head message first (offset 0 of the one partition), then the rest behind it."""
    envelopes = pair_envelopes(0, MESSAGES, users)
    async with EventPublisher(settings, target, build_codec(settings)) as publisher:
        await publisher.publish_many(envelopes[:1])
        await publisher.publish_many(envelopes[1:])
    return pairs_of(envelopes)


def head_id(sent: dict[str, tuple[str, str]]) -> str:
    return next(iter(sent))


def holds(batch: Sequence[Incoming], message_id: str) -> bool:
    return any(
        isinstance(i.envelope.payload, PersonalChatSent) and i.envelope.payload.message_id == message_id for i in batch
    )


async def replayed_in_full(
    settings: Settings, store: MessageStore, users: list[str], sent: dict[str, tuple[str, str]]
) -> None:
    """A fresh Faust worker (nothing patched) brings every message in, each exactly once."""
    async with worker(settings) as task:
        await wait_until(lambda: _at_least(store, users, 2 * len(sent)), timeout=120, what="every inbox entry")
        await asyncio.sleep(1.0)  # anything replayed late would show up as a duplicate now
        assert not task.done(), task
    await check_invariants(store, sent)


async def _at_least(store: MessageStore, users: Sequence[str], n: int) -> bool:
    return await inbox_count(store, users) >= n


async def test_a_slow_head_record_is_never_committed_over(
    kafka_target: KafkaTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#606: the head record's batch is held in the stage (longer than several commit intervals)
    while the rest of the partition waits behind it; the worker then stops. Nothing at or past
    the head may have been committed, and a restart stores all of it, exactly once."""
    settings = faust_settings(kafka_target, tmp_path)
    await ensure_topics(settings, kafka_target)
    users = [f"u{i}-{uuid.uuid4().hex[:4]}" for i in range(2)]
    sent = await publish_head_then_rest(settings, kafka_target, users)
    entered, release = asyncio.Event(), asyncio.Event()
    original = PersistFanoutStage.handle

    async def slow_head(self: PersistFanoutStage, batch: Sequence[Incoming]) -> StageResult:
        if holds(batch, head_id(sent)):
            entered.set()
            await release.wait()
        return await original(self, batch)

    monkeypatch.setattr(PersistFanoutStage, "handle", slow_head)
    async with open_store(settings) as store:
        async with worker(settings):
            await asyncio.wait_for(entered.wait(), 60)
            await asyncio.sleep(2.0)  # four commit intervals with the head batch in the stage
            assert await committed_offset(settings, kafka_target) in (None, 0)
        # stopped with the head batch still in the stage: abandoned unacked
        assert await committed_offset(settings, kafka_target) in (None, 0)
        monkeypatch.setattr(PersistFanoutStage, "handle", original)
        await replayed_in_full(settings, store, users, sent)
    assert await committed_offset(settings, kafka_target) == MESSAGES


async def test_a_batch_that_fails_for_good_stops_the_worker_and_is_replayed_after_a_restart(
    kafka_target: KafkaTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#527/#315: the head record's outputs, and then its dead letter, are refused for good. The
    worker must stop with that error (not restart the agent past it), with no offset committed
    over it, though the records behind it were handled; a restart replays it, exactly once."""
    settings = faust_settings(kafka_target, tmp_path)
    await ensure_topics(settings, kafka_target)
    users = [f"u{i}-{uuid.uuid4().hex[:4]}" for i in range(2)]
    sent = await publish_head_then_rest(settings, kafka_target, users)
    doomed = head_id(sent)
    refused: list[int] = []

    def from_doomed(outputs: Sequence[Output]) -> bool:
        return any(doomed in repr(o.envelope.payload) for o in outputs)  # dead letters carry the raw record

    def refusing(method: Callable[..., Awaitable[object]]) -> Callable[..., Awaitable[object]]:
        async def send(self: PublisherSink, outputs: Sequence[Output]) -> object:
            if from_doomed(outputs):
                refused.append(len(outputs))
                raise ValueError("refused for good (test)")
            return await method(self, outputs)

        return send

    originals = PublisherSink.send_outputs, PublisherSink.enqueue_outputs
    monkeypatch.setattr(PublisherSink, "send_outputs", refusing(PublisherSink.send_outputs))
    monkeypatch.setattr(PublisherSink, "enqueue_outputs", refusing(PublisherSink.enqueue_outputs))
    async with open_store(settings) as store:
        async with worker(settings) as task:
            await asyncio.wait([task], timeout=60)
            assert task.done(), "a batch failing for good must stop the worker"
            assert isinstance(task.exception(), ValueError)
        assert refused, "the scenario must refuse the head batch's outputs"
        assert await committed_offset(settings, kafka_target) in (None, 0)
        monkeypatch.setattr(PublisherSink, "send_outputs", originals[0])
        monkeypatch.setattr(PublisherSink, "enqueue_outputs", originals[1])
        await replayed_in_full(settings, store, users, sent)
    assert await committed_offset(settings, kafka_target) == MESSAGES


async def test_rebalances_mid_run_lose_and_duplicate_nothing(kafka_target: KafkaTarget, tmp_path: Path) -> None:
    """Two Faust worker processes: the second joins while messages flow (the partitions split),
    then the first stops (SIGTERM: they all move to the second), all mid-run."""
    settings = make_settings(
        kafka_target,
        tmp_path,
        worker_app_id=f"w-{uuid.uuid4().hex[:8]}",
        worker_engine="faust",
        worker_session_timeout_s=6.0,
        worker_rebalance_timeout_s=3.0,
    )
    await ensure_topics(settings, kafka_target)
    users = [f"u{i}-{uuid.uuid4().hex[:4]}" for i in range(40)]
    first = WorkerProcess(settings, tmp_path / "first.log")
    second = WorkerProcess(settings, tmp_path / "second.log")
    first.start()
    async with open_store(settings) as store:
        try:
            async with EventPublisher(settings, kafka_target, build_codec(settings)) as publisher:
                sending = asyncio.ensure_future(send_pairs(publisher, 6000, users))
                await wait_until(lambda: _at_least(store, users, 2000), timeout=120, what="a sixth of the run")
                await asyncio.to_thread(second.start)  # joins: a rebalance with batches in flight
                await wait_until(lambda: _at_least(store, users, 5000), timeout=120, what="the second joined")
                assert first.terminate(sig=signal.SIGTERM) == 0  # leaves: everything moves to the second
                sent = await sending
                assert await inbox_count(store, users) < 12_000, "the rebalances must land mid-run"
                await wait_until(lambda: _at_least(store, users, 12_000), timeout=180, what="every inbox entry")
                await asyncio.sleep(1.0)  # anything replayed late would show up as a duplicate now
        finally:
            first.stop()
            second.stop()
        await check_invariants(store, sent)
