"""The worker: one :class:`StageRunner` per stage, and the edge-liveness timer.

Runners are thin: take a batch of raw records, let the stage's :class:`BatchProcessor` handle,
retry or dead-letter them, send the outputs, and commit the input offsets only after the
broker acknowledged those outputs (``runner.py``). A worker killed at any point replays from the
last committed offsets; every stage is idempotent. One consumer per stage, one batch handled
at a time per stage (the next is handled while the previous one's outputs await the broker);
scale out with more workers and partitions.

With transactions on (``CHAT_KAFKA_TRANSACTIONS``, real Kafka) the runners are
:class:`TransactionalStageRunner`: each input partition's outputs and offsets commit in one
transaction of that partition's own producer (``transactional_runner.py``), exactly once for
``read_committed`` consumers.

Nothing connects at import or in :func:`build_worker`; ``run_worker`` (``worker.py``) starts
the consumers and runs the :class:`Worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.events.change_rules import ChangeWindows
from chat_events.kafka.connection import KafkaTarget, consumer_options
from chat_events.kafka.idle_pacer import build_consumer
from chat_events.producers.kafka_producer import build_producer
from chat_events.producers.publisher import EventPublisher
from chat_events.settings import Settings
from chat_events.store.port import MessageStore
from chat_events.streams.direct_outputs import DirectOutputs
from chat_events.streams.edge_expiry import EDGE_CHECK_INTERVAL_S, EdgeExpiry
from chat_events.streams.fanout import FanoutStage
from chat_events.streams.groups import GroupsStage
from chat_events.streams.inbox import InboxStage
from chat_events.streams.log_reset import LogResetWatch
from chat_events.streams.persist import PersistStage
from chat_events.streams.persist_fanout import PersistFanoutStage
from chat_events.streams.producer_pool import ProducerPool
from chat_events.streams.records import Output
from chat_events.streams.runner import RebalanceFanout, RunnerTimings, StageRunner
from chat_events.streams.stage import BatchProcessor, Stage
from chat_events.streams.transactional import PartitionTransactions
from chat_events.streams.transactional_runner import (
    TransactionalRebalance,
    TransactionalStageRunner,
    TransactionTimings,
)
from chat_events.streams.user_events import UserEventsStage
from chat_events.topics import (
    DEAD_LETTER,
    GROUP_EVENTS,
    INBOX,
    MESSAGE_STORED,
    PERSONAL_CHAT,
    PRESENCE,
    PUSH,
    ROOM_MESSAGES,
    USER_EVENTS,
    TopicCatalog,
    TopicSpec,
)

log = logging.getLogger(__name__)
DEFER_OFFSETS_S = 1.0
"""Transactional mode: the longest a sub-batch with nothing to send waits for its offset's commit
(``transactional.py``): at most this much of such records is replayed after a crash."""


class PublisherSink:
    """:class:`OutputSink` over the shared :class:`EventPublisher`.

    Outputs are not validated again: every stage builds them from records that were validated
    when first published, and the stages' unit tests hold their outputs to the contract
    (``validate_outputs`` there). Dead letters carry the bad record as raw bytes.
    """

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    async def send_outputs(self, outputs: Sequence[Output]) -> None:
        routed = [(o.topic, o.key, o.envelope, o.partition) for o in outputs]
        await self._publisher.send_routed(routed, validate=False)

    async def enqueue_outputs(self, outputs: Sequence[Output]) -> Awaitable[None]:
        routed = [(o.topic, o.key, o.envelope, o.partition) for o in outputs]
        return await self._publisher.enqueue_routed(routed, validate=False)


@dataclass(frozen=True, slots=True)
class Stages:
    persist: PersistStage
    fanout: FanoutStage
    inbox: InboxStage
    sessions: UserEventsStage
    groups: GroupsStage


def build_stages(settings: Settings, store: MessageStore) -> Stages:
    catalog = TopicCatalog(settings)

    def name(spec: TopicSpec) -> str:
        return catalog.resolve(spec).name

    return Stages(
        persist=PersistStage(
            store,
            stored_topic=name(MESSAGE_STORED),
            max_payload_bytes=settings.max_payload_bytes,
            windows=ChangeWindows(edit_ms=settings.edit_window_s * 1000, recall_ms=settings.recall_window_s * 1000),
        ),
        fanout=FanoutStage(
            store,
            inbox_topic=name(INBOX),
            inbox_partitions=catalog.resolve(INBOX).partitions,
            room_topic=name(ROOM_MESSAGES),
            write_max_members=settings.fanout_write_max_members,
        ),
        inbox=InboxStage(
            store,
            edge_topic=lambda edge: catalog.edge_topic(edge).name,
            push_topic=name(PUSH),
            edge_partitions=catalog.edge_topic("partitions").partitions,
            receipts_max_group=settings.read_receipts_max_group,
        ),
        sessions=UserEventsStage(
            store,
            presence_topic=name(PRESENCE),
            user_events_topic=name(USER_EVENTS),
            edge_topic=lambda edge: catalog.edge_topic(edge).name,
            rate_limit_window_ms=settings.rate_limit_window_ms,
            edge_timeout_ms=settings.edge_heartbeat_timeout_ms,
            receipts_max_group=settings.read_receipts_max_group,
        ),
        groups=GroupsStage(store, chat_topic=name(PERSONAL_CHAT)),
    )


@dataclass(slots=True)
class Worker:
    """The stage runners of one worker process and its edge-expiry timer."""

    settings: Settings
    target: KafkaTarget
    stages: Stages
    sink: PublisherSink
    runners: list[StageRunner]
    pool: ProducerPool | None = None
    """The per-partition transactional producers (transactional mode only)."""
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def consumer(self) -> AIOKafkaConsumer:
        """The one consumer all stages share (group ``CHAT_WORKER_APP_ID``)."""
        return self.runners[0].consumer

    def subscribe(self) -> None:
        """Join the group for every stage's topic (after the consumer started: aiokafka's
        ``start()`` would otherwise wait for the first assignment)."""
        listener: RebalanceFanout | TransactionalRebalance = RebalanceFanout(self.runners)
        if self.pool is not None:
            runners = [runner for runner in self.runners if isinstance(runner, TransactionalStageRunner)]
            wait_s = self.settings.kafka_connect_timeout_s
            listener = TransactionalRebalance(runners, self.pool, self.consumer, wait_s=wait_s)
        self.consumer.subscribe([runner.topic for runner in self.runners], listener=listener)

    async def close(self) -> None:
        """After the consumer stopped: stop the transactional producers."""
        if self.pool is not None:
            await self.pool.close()

    async def wait_assigned(self) -> None:
        """Until every runner holds its first assignment."""
        await asyncio.gather(*(runner.assigned.wait() for runner in self.runners))

    async def run(self) -> None:
        """Run every runner and the timer until cancelled, or until one of them fails (then the
        others are cancelled and the error raised: the worker exits and a restart replays)."""
        self._tasks = [asyncio.ensure_future(runner.run()) for runner in self.runners]
        self._tasks.append(asyncio.ensure_future(self._expire_edges_forever()))
        self._tasks.append(asyncio.ensure_future(LogResetWatch(self.consumer).run()))  # a broker that lost its logs
        try:
            done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:  # none of them ends on its own: an ending is a failure
                if task.cancelled():
                    raise RuntimeError("a stage runner was cancelled from inside; stopping the worker")
                task.result()
                raise RuntimeError("a stage runner ended unexpectedly; stopping the worker")
        finally:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def owns_user(self, user_id: str) -> bool:
        """Whether this worker's sessions runner holds ``user_id``'s partition of user-events."""
        return self._expiry().owns_user(user_id)

    def _runner(self, name: str) -> StageRunner:
        return next(runner for runner in self.runners if runner.name == name)

    def _expiry(self) -> EdgeExpiry:
        def owned() -> set[int]:
            return {tp.partition for tp in self._runner("sessions").partitions()}

        runner = self._runner("sessions")
        return EdgeExpiry(
            self.settings, self.target, self.stages.sessions, self.sink, owned, caught_up=lambda: read_to_end(runner)
        )

    async def _expire_edges_forever(self) -> None:
        expiry = self._expiry()
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(EDGE_CHECK_INTERVAL_S)
            expiry.credit(loop.time() - before)  # the heartbeats sent while it was stopped are unread
            await expiry.expire()


def build_worker(
    settings: Settings,
    target: KafkaTarget,
    *,
    store: MessageStore,
    publisher: EventPublisher,
    codec: AvroEnvelopeCodec,
) -> Worker:
    """The worker over an opened ``store`` and a started ``publisher`` (its consumer is
    created here; the caller starts it, then calls :meth:`Worker.subscribe`)."""
    catalog = TopicCatalog(settings)
    stages = build_stages(settings, store)
    sink = PublisherSink(publisher)
    dead_letter = catalog.resolve(DEAD_LETTER).name
    timings = RunnerTimings(batch_max=settings.worker_batch_max)

    async def after_sessions_assigned() -> None:
        """The sessions stage watches the edges its users are on: start their clocks afresh."""
        stages.sessions.reset()
        stages.sessions.monitor.reset(now_ms=time.monotonic() * 1000)
        await stages.sessions.watch_stored_edges()

    def reset_hook(stage: Stage) -> Callable[[], Awaitable[None]]:
        async def reset() -> None:  # another worker may have advanced this stage's counters
            stage.reset()

        return reset

    wiring: list[tuple[Stage, TopicSpec]] = [
        (PersistFanoutStage(stages.persist, stages.fanout), PERSONAL_CHAT),  # no hop via message-stored
        (stages.inbox, INBOX),
        (stages.sessions, USER_EVENTS),
        (stages.groups, GROUP_EVENTS),
    ]
    options = consumer_options(settings, target)
    # A JoinGroup is answered only when the rebalance completes: give it the rebalance timeout
    # and more, as the Java client does (the embedded broker holds every first join that long).
    join_ms = int(settings.worker_rebalance_timeout_s * 1000) + 5000
    options["request_timeout_ms"] = max(options["request_timeout_ms"], join_ms)
    consumer = build_consumer(
        settings,
        target,
        wake_on=[catalog.resolve(spec).name for _, spec in wiring],
        **options,
        group_id=settings.worker_app_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.worker_batch_max,
        session_timeout_ms=int(settings.worker_session_timeout_s * 1000),
        heartbeat_interval_ms=int(min(3.0, settings.worker_session_timeout_s / 3) * 1000),
        rebalance_timeout_ms=int(settings.worker_rebalance_timeout_s * 1000),
    )
    processors = {
        catalog.resolve(spec).name: BatchProcessor(
            stage, codec, sink, dead_letter_topic=dead_letter, max_backoff_s=settings.worker_retry_max_backoff_s
        )
        for stage, spec in wiring
    }
    pool = _producer_pool(settings, target, codec, processors, sink) if target.transactions(settings) else None
    grace_s = settings.worker_session_timeout_s + settings.worker_rebalance_timeout_s + 5.0
    txn_timings = TransactionTimings(fenced_grace_s=grace_s, start_wait_s=settings.kafka_connect_timeout_s)
    runners: list[StageRunner] = []
    for stage, spec in wiring:
        topic = catalog.resolve(spec).name
        hook = after_sessions_assigned if stage is stages.sessions else reset_hook(stage)
        if pool is None:
            runner = StageRunner(stage.name, topic, processors[topic], consumer, timings=timings, on_assigned=hook)
        else:
            runner = TransactionalStageRunner(
                stage.name,
                topic,
                processors[topic],
                consumer,
                pool,
                timings=timings,
                transactions=txn_timings,
                on_assigned=hook,
            )
        runners.append(runner)
    return Worker(settings, target, stages, sink, runners, pool)


def _producer_pool(
    settings: Settings,
    target: KafkaTarget,
    codec: AvroEnvelopeCodec,
    processors: dict[str, BatchProcessor],
    sink: PublisherSink,
) -> ProducerPool:
    """Transactional mode: one producer per assigned input partition, committing the partition's
    outputs and offsets together (``transactional.py``); pushes to the edges go through the
    shared (idempotent) producer of ``sink`` instead (``direct_outputs.py``)."""

    catalog = TopicCatalog(settings)

    def transactions(tp: TopicPartition, producer: AIOKafkaProducer) -> PartitionTransactions:
        return PartitionTransactions(
            tp,
            producer,
            group_id=settings.worker_app_id,
            processor=processors[tp.topic],
            codec=codec,
            max_backoff_s=settings.worker_retry_max_backoff_s,
            direct=DirectOutputs(
                sink, name=f"{tp.topic}[{tp.partition}]", max_backoff_s=settings.worker_retry_max_backoff_s
            ),
            is_direct=catalog.is_edge_topic,
            defer_offsets_s=DEFER_OFFSETS_S,
        )

    return ProducerPool(
        app_id=settings.worker_app_id,
        topics=processors,
        make_producer=lambda tid: build_producer(settings, target, transactional_id=tid),
        make_transactions=transactions,
        start_timeout_s=settings.kafka_connect_timeout_s,
    )


async def read_to_end(runner: StageRunner) -> bool:
    """Whether ``runner`` has taken every record of its partitions up to what the broker last
    reported as their end (the last stable offset for a read_committed consumer, else the high
    watermark). Unknown (no fetch answered since the assignment) counts as behind."""
    for tp in runner.partitions():
        end = runner.consumer.last_stable_offset(tp)
        if end is None or end < 0:
            end = runner.consumer.highwater(tp)
        if end is None:
            return False
        try:
            if await runner.consumer.position(tp) < end:
                return False
        except Exception:  # revoked meanwhile: not this worker's to judge
            return False
    return True
