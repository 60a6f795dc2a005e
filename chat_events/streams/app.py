"""The worker's Faust app: one agent per stage, and the edge-liveness timer.

Agents are thin: take a batch of raw records (``noack_take``: nothing is acknowledged
automatically), let the stage's :class:`BatchProcessor` handle, retry or dead-letter them and
send the outputs, and only then ack the input offsets. A worker killed at any point replays
from the last committed offsets; every stage is idempotent. Concurrency is 1 per agent
(faust-streaming #606 loses messages with more); scale out with more workers and partitions.

Faust needs a module-level app only for ``faust -A``; we build it in a function instead
(``chat-events worker`` wires it), so nothing connects at import.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust

from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.kafka.admin import delete_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.producers.partitioner import partition_for
from chat_events.producers.publisher import EventPublisher
from chat_events.settings import Settings
from chat_events.store.port import MessageStore
from chat_events.streams.fanout import FanoutStage
from chat_events.streams.faust_transport import ChatFaustApp
from chat_events.streams.groups import GroupsStage
from chat_events.streams.inbox import InboxStage
from chat_events.streams.persist import PersistStage
from chat_events.streams.records import Output, SourceRecord
from chat_events.streams.stage import BatchProcessor, Stage
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
EDGE_CHECK_INTERVAL_S = 1.0


class PublisherSink:
    """:class:`OutputSink` over the shared :class:`EventPublisher`."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    async def send_outputs(self, outputs: Sequence[Output]) -> None:
        await self._publisher.send_routed([(o.topic, o.key, o.envelope, o.partition) for o in outputs])


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
        persist=PersistStage(store, stored_topic=name(MESSAGE_STORED), max_payload_bytes=settings.max_payload_bytes),
        fanout=FanoutStage(
            store,
            inbox_topic=name(INBOX),
            room_topic=name(ROOM_MESSAGES),
            write_max_members=settings.fanout_write_max_members,
        ),
        inbox=InboxStage(store, edge_topic=lambda edge: catalog.edge_topic(edge).name, push_topic=name(PUSH)),
        sessions=UserEventsStage(
            store,
            presence_topic=name(PRESENCE),
            user_events_topic=name(USER_EVENTS),
            rate_limit_window_ms=settings.rate_limit_window_ms,
            edge_timeout_ms=settings.edge_heartbeat_timeout_ms,
        ),
        groups=GroupsStage(store),
    )


def build_app(
    settings: Settings,
    target: KafkaTarget,
    *,
    store: MessageStore,
    publisher: EventPublisher,
    codec: AvroEnvelopeCodec,
) -> ChatFaustApp:
    """The worker app over opened ``store`` and started ``publisher``."""
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
        producer_acks=-1,
        broker_session_timeout=settings.worker_session_timeout_s,
        broker_rebalance_timeout=settings.worker_rebalance_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.worker_session_timeout_s / 3),
        key_serializer="raw",
        value_serializer="raw",
    )
    app.fetch_max_wait_ms = settings.kafka_fetch_max_wait_ms
    catalog = TopicCatalog(settings)
    stages = build_stages(settings, store)
    sink = PublisherSink(publisher)
    dead_letter = catalog.resolve(DEAD_LETTER).name
    wiring: list[tuple[Stage, TopicSpec]] = [
        (stages.persist, PERSONAL_CHAT),
        (stages.fanout, MESSAGE_STORED),
        (stages.inbox, INBOX),
        (stages.sessions, USER_EVENTS),
        (stages.groups, GROUP_EVENTS),
    ]
    for stage, spec in wiring:
        resolved = catalog.resolve(spec)
        topic = app.topic(
            resolved.name, key_type=bytes, value_type=bytes, partitions=resolved.partitions, internal=False
        )
        processor = BatchProcessor(
            stage, codec, sink, dead_letter_topic=dead_letter, max_backoff_s=settings.worker_retry_max_backoff_s
        )
        app.agent(topic, name=f"chat-events.{stage.name}", concurrency=1)(
            _agent(stage.name, processor, settings.worker_batch_max, settings.worker_batch_within_ms / 1000)
        )

    user_events = catalog.resolve(USER_EVENTS)

    def owns_user(user_id: str) -> bool:
        partition = partition_for(user_id.encode(), user_events.partitions)
        return any(tp.topic == user_events.name and tp.partition == partition for tp in app.consumer.assignment())

    assigned_once = asyncio.Event()

    async def on_assigned(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        """A rebalance may have moved keys from another worker: reload counters from the store."""
        assigned_once.set()
        stages.persist.reset()
        stages.inbox.reset()
        stages.sessions.monitor.reset(now_ms=time.monotonic() * 1000)
        await stages.sessions.watch_stored_edges()

    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]  # mode types handlers as sync

    @app.timer(EDGE_CHECK_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def expire_silent_edges() -> None:
        await _expire_edges(settings, target, stages.sessions, sink, owns_user, user_events.name, app)

    app.chat_stages = stages  # for tests and the benchmark
    app.chat_assigned = assigned_once  # set once the worker holds its first assignment
    return app


def _agent(name: str, processor: BatchProcessor, batch_max: int, within_s: float) -> Callable[[Any], Any]:
    async def agent(stream: Any) -> None:
        async for events in stream.noack_take(batch_max, within=within_s):
            records = [
                SourceRecord(e.message.topic, e.message.partition, e.message.offset, e.message.key, e.message.value)
                for e in events
            ]
            await processor.process(records)
            for event in events:
                await stream.ack(event)

    agent.__name__ = agent.__qualname__ = f"{name}_agent"  # Faust names agents after the function
    return agent


async def _expire_edges(
    settings: Settings,
    target: KafkaTarget,
    sessions: UserEventsStage,
    sink: PublisherSink,
    owns_user: Callable[[str], bool],
    user_events_topic: str,
    app: faust.App,
) -> None:
    """Never raises: a failed round is logged and the edges are checked again next tick."""
    dead: list[str] = []
    try:
        outputs, dead = await sessions.expire_silent_edges(owns_user)
        if outputs:
            await sink.send_outputs(outputs)
        owns_first = any(tp.topic == user_events_topic and tp.partition == 0 for tp in app.consumer.assignment())
        if dead and owns_first:  # one worker cleans up the dead edges' delivery topics
            catalog = TopicCatalog(settings)
            deleted = await delete_topics(settings, target, [catalog.edge_topic(edge).name for edge in dead])
            if deleted:
                log.info("deleted delivery topics of dead edges: %s", ", ".join(deleted))
    except Exception:
        log.exception("edge expiry round failed; retrying next tick")
        sessions.monitor.rearm(dead)
