"""The Faust engine (``CHAT_WORKER_ENGINE=faust``): the same stages as one Faust agent each.

:func:`build_faust_worker` wires the stage objects of ``app.py`` (:func:`build_stages`, the same
:class:`BatchProcessor` per stage, the same :class:`PublisherSink` over the project's
publisher) into a faust-streaming app: one agent per stage topic, concurrency 1, each running a
:class:`StageAgent` (``faust_agent.py``: batches, FIFO acks, Faust's offset traps), and the
edge-liveness check as a Faust timer. ``faust_worker.py`` runs it.

Guarantees: at-least-once with idempotent stages (same seqs, same output envelope ids on a
replay; the edge drops a replayed dispatch by seq), on both brokers. Faust's own transactions
(``processing_guarantee="exactly_once"``) cover only what Faust's producer sends, not the
publisher's outputs, and the embedded broker has none: the engine ignores
``CHAT_KAFKA_TRANSACTIONS``; the native runner is the one with exactly-once outputs on Kafka.

What reaches into Faust's internals, all here:

* faust-streaming hard-codes ``fetch_max_wait_ms=1500`` on its worker consumer; on the embedded
  broker (which answers a fetch only when its wait is over) that was 1.5 s per hop. The consumer
  takes :func:`fetch_wait_ms` instead, the prefetch backoff of :class:`ChatConsumer`, and
  ``read_committed`` (a topic a transactional native worker wrote to shows no aborted records).
* the revocation hook: before Faust's consumer forgets the revoked partitions' acks, the agents
  stop sending, their batches in flight are acknowledged and acked, and the acks committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.kafka.connection import KafkaTarget, fetch_wait_ms
from chat_events.kafka.idle_pacer import KAFKA_PREFETCH_BACKOFF_S, PREFETCH_BACKOFF_S, ChatConsumer
from chat_events.producers.publisher import EventPublisher
from chat_events.settings import Settings
from chat_events.store.port import MessageStore
from chat_events.streams.app import PublisherSink, Stages, build_stages
from chat_events.streams.edge_expiry import EDGE_CHECK_INTERVAL_S, EdgeExpiry
from chat_events.streams.faust_agent import AgentTimings, Rebalances, StageAgent
from chat_events.streams.persist_fanout import PersistFanoutStage
from chat_events.streams.stage import BatchProcessor, Stage
from chat_events.topics import DEAD_LETTER, GROUP_EVENTS, INBOX, PERSONAL_CHAT, USER_EVENTS, TopicCatalog, TopicSpec

log = logging.getLogger(__name__)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        options = cast(ChatFaustApp, self.app).chat_consumer_options
        # aiokafka keeps the constructor values and hands them to its Fetcher in start()
        consumer._fetch_max_wait_ms = options.fetch_max_wait_ms
        consumer._isolation_level = "read_committed"
        consumer.__class__ = ChatConsumer  # start() sets the fetcher's prefetch backoff
        consumer._prefetch_backoff_s = options.prefetch_backoff_s
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        """Runs in the app's loop before Faust clears the revoked partitions' acks."""
        await cast(ChatFaustApp, self.app).chat_before_revoke(revoked)
        try:
            await super().on_partitions_revoked(revoked)
        finally:
            cast(ChatFaustApp, self.app).chat_after_revoke()


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


@dataclass(frozen=True, slots=True)
class ConsumerOptions:
    fetch_max_wait_ms: int
    prefetch_backoff_s: float


class ChatFaustApp(faust.App):
    """A Faust app with our consumer options and the agents' revocation hooks."""

    chat_consumer_options = ConsumerOptions(fetch_max_wait_ms=10, prefetch_backoff_s=0.0)
    chat_worker: FaustWorker | None = None

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)

    async def chat_before_revoke(self, revoked: set[Any]) -> None:
        if self.chat_worker is not None:
            await self.chat_worker.before_revoke()

    def chat_after_revoke(self) -> None:
        if self.chat_worker is not None:
            self.chat_worker.after_revoke()


@dataclass(slots=True)
class FaustWorker:
    """The Faust app of one worker process, its agents and what the runner watches."""

    app: ChatFaustApp
    stages: Stages
    agents: list[StageAgent]
    rebalances: Rebalances
    assigned: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at the first partition assignment."""
    failed: asyncio.Future[BaseException] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    """Resolves with the error of a batch that failed for good: the worker must stop."""
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def fail(self, exc: BaseException) -> None:
        if not self.failed.done():
            self.failed.set_result(exc)

    async def drain(self) -> None:
        """Let every agent's batches in flight finish, ack them, and commit the acks."""
        await asyncio.gather(*(agent.drain() for agent in self.agents))
        try:
            await self.app.consumer.commit()
        except Exception as exc:  # replayed by the partitions' next owner, which changes nothing
            log.warning("commit after draining failed (%r); those records will be replayed", exc)

    async def before_revoke(self) -> None:
        self.rebalances.revoking = True
        await self.drain()

    def after_revoke(self) -> None:
        """The partitions are gone; ``revoking`` stays set until the next assignment."""
        self.rebalances.epoch += 1
        for agent in self.agents:
            agent.forget()

    def on_assigned(self) -> None:
        self.rebalances.generation = self.app.consumer_generation_id
        self.rebalances.epoch += 1
        self.rebalances.revoking = False
        self.assigned.set()

    async def stop_sending(self) -> None:
        """Before stopping: nothing new is sent; what is in flight finishes and is committed."""
        self.rebalances.stopping = True
        await self.drain()

    def owned(self, topic: str) -> set[int]:
        try:
            assignment = self.app.consumer.assignment()
        except Exception:  # not started yet
            return set()
        return {tp.partition for tp in assignment if tp.topic == topic}


def build_faust_worker(
    settings: Settings,
    target: KafkaTarget,
    *,
    store: MessageStore,
    publisher: EventPublisher,
    codec: AvroEnvelopeCodec,
) -> FaustWorker:
    """The Faust engine over an opened ``store`` and a started ``publisher`` (nothing connects
    until the app starts)."""
    catalog = TopicCatalog(settings)
    app = ChatFaustApp(
        settings.worker_app_id,
        broker=[f"kafka://{server}" for server in target.bootstrap_servers.split(",")],
        autodiscover=False,
        web_enabled=False,
        datadir=str(settings.data_dir / "faust"),  # Faust's default is ./<app id>-data in the cwd
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=0.5,
        broker_max_poll_records=settings.worker_batch_max,
        stream_buffer_maxsize=max(4096, 2 * settings.worker_batch_max),
        stream_wait_empty=False,  # the agents drain their batches in flight themselves (bounded)
        producer_acks=-1,
        broker_session_timeout=settings.worker_session_timeout_s,
        broker_rebalance_timeout=settings.worker_rebalance_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.worker_session_timeout_s / 3),
        broker_request_timeout=max(
            settings.kafka_request_timeout_ms / 1000,
            settings.worker_session_timeout_s + 1,
            settings.worker_rebalance_timeout_s + 5,
        ),
        key_serializer="raw",
        value_serializer="raw",
    )
    app.chat_consumer_options = ConsumerOptions(
        fetch_max_wait_ms=fetch_wait_ms(settings, target),
        prefetch_backoff_s=PREFETCH_BACKOFF_S if target.embedded else KAFKA_PREFETCH_BACKOFF_S,
    )
    stages = build_stages(settings, store)
    sink = PublisherSink(publisher)
    dead_letter = catalog.resolve(DEAD_LETTER).name
    rebalances = Rebalances()
    timings = AgentTimings(batch_max=settings.worker_batch_max, within_s=settings.worker_batch_within_ms / 1000)
    worker = FaustWorker(app, stages, [], rebalances)
    app.chat_worker = worker

    async def after_sessions_assigned() -> None:
        """The sessions stage watches the edges its users are on: start their clocks afresh."""
        stages.sessions.reset()
        stages.sessions.monitor.reset(now_ms=time.monotonic() * 1000)
        await stages.sessions.watch_stored_edges()

    def reset_hook(stage: Stage) -> Callable[[], Any]:
        async def reset() -> None:  # another worker may have advanced this stage's counters
            stage.reset()

        return reset

    wiring: list[tuple[Stage, TopicSpec]] = [
        (PersistFanoutStage(stages.persist, stages.fanout), PERSONAL_CHAT),
        (stages.inbox, INBOX),
        (stages.sessions, USER_EVENTS),
        (stages.groups, GROUP_EVENTS),
    ]
    sessions_agent: StageAgent | None = None
    for stage, spec in wiring:
        resolved = catalog.resolve(spec)
        processor = BatchProcessor(
            stage, codec, sink, dead_letter_topic=dead_letter, max_backoff_s=settings.worker_retry_max_backoff_s
        )
        agent = StageAgent(
            stage.name,
            processor,
            rebalances,
            timings,
            on_assigned=after_sessions_assigned if stage is stages.sessions else reset_hook(stage),
            on_failure=worker.fail,
        )
        if stage is stages.sessions:
            sessions_agent = agent
        worker.agents.append(agent)
        topic = app.topic(resolved.name, key_type=bytes, value_type=bytes, partitions=resolved.partitions)
        app.agent(topic, name=f"{settings.worker_app_id}.{stage.name}", concurrency=1)(_agent_body(agent))
    assert sessions_agent is not None
    user_events = catalog.resolve(USER_EVENTS).name
    expiry = EdgeExpiry(settings, target, stages.sessions, sink, lambda: worker.owned(user_events))

    async def on_assigned(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        """A new epoch; the sessions stage resets now (not at its next batch: the edges' clocks
        must restart even when no heartbeat arrives)."""
        worker.on_assigned()
        mine = {name: sorted(worker.owned(name)) for name in _topics(app)}
        log.info("assigned partitions %s", mine)
        task = asyncio.ensure_future(_reset_sessions(sessions_agent, rebalances.epoch, worker))
        worker.tasks.add(task)
        task.add_done_callback(worker.tasks.discard)

    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]  # mode's signature wants signal=
    last_check = [asyncio.get_running_loop().time()]

    @app.timer(EDGE_CHECK_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def expire_silent_edges() -> None:
        now = asyncio.get_running_loop().time()
        expiry.credit(now - last_check[0])  # the heartbeats sent while it was stopped are unread
        last_check[0] = now
        if worker.assigned.is_set() and not rebalances.revoking and sessions_agent.reset_done(rebalances.epoch):
            async with sessions_agent.lock:
                await expiry.expire()

    return worker


async def _reset_sessions(agent: StageAgent, epoch: int, worker: FaustWorker) -> None:
    try:
        await agent.reset_if_stale(epoch)
    except Exception as exc:
        worker.fail(exc)


def _topics(app: ChatFaustApp) -> Iterable[str]:
    return sorted({tp.topic for tp in app.consumer.assignment()})


def _agent_body(agent: StageAgent) -> Callable[[Any], Any]:
    async def body(stream: Any) -> None:
        await agent.run(stream)

    body.__name__ = body.__qualname__ = f"{agent.name}_agent"  # Faust names agents after the function
    return body
