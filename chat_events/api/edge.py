"""One edge node: its id, its Kafka and store clients, its sockets, and the loops that keep it
alive (deliveries in, heartbeats out).

Lifecycle (run from the FastAPI lifespan):

* start: create the topics (idempotent) and this edge's delivery topic ``chat.edge.<id>``,
  open the store and the publisher, start consuming the delivery topic (from its beginning: the
  topic is new), ``chat.room-messages`` (from its end: rooms are synced by seq on subscribe) and
  ``chat.presence`` (from its end: a presence subscription is answered with the current state),
  start heartbeating to every partition of ``chat.user-events``, and sweep for silent sockets.
* stop: announce ``stopping`` in a last heartbeat, close every socket with 1001 (going away),
  publish a userDisconnected for each, then close the clients. The workers expire whatever a
  killed edge could not announce after ``CHAT_EDGE_HEARTBEAT_TIMEOUT_MS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from chat_events.api.authz import conversation_of
from chat_events.api.backpressure import AdmissionGate
from chat_events.api.block_cache import BlockerCache
from chat_events.api.block_rules import without_blockers
from chat_events.api.connection import Connection
from chat_events.api.group_cache import GroupStateCache
from chat_events.api.idle import IdleSweep
from chat_events.api.membership import MembershipCache
from chat_events.api.presence_feed import PresenceFeed
from chat_events.api.protocol import Close, Code, Typing, output_frame
from chat_events.api.ratelimit import RateLimiter
from chat_events.api.registry import ConnectionRegistry
from chat_events.api.views import delivery_view, message_view, room_delivery_view
from chat_events.api.worker_watch import WorkerWatch
from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.codec.factory import build_codec
from chat_events.edges import new_edge_id
from chat_events.errors import ChatEventsError
from chat_events.events.conversation_events import ConversationChanged, DeliveryReceiptDispatched, ReadReceiptDispatched
from chat_events.events.factory import new_envelope
from chat_events.events.types import (
    EdgeHeartbeat,
    Envelope,
    MessageDispatched,
    MessageDispatchedBatch,
    MessageStored,
    UserDisconnected,
    UserPresenceChanged,
    UserTyping,
)
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget, client_options, consumer_options, resolve_target
from chat_events.kafka.consumer import topic_partitions
from chat_events.kafka.idle_pacer import build_consumer
from chat_events.kafka.lag import group_lag
from chat_events.producers.publisher import EventPublisher
from chat_events.settings import Settings
from chat_events.store.factory import open_store
from chat_events.store.port import MessageStore
from chat_events.topics import INBOX, PERSONAL_CHAT, PRESENCE, ROOM_MESSAGES, USER_EVENTS, TopicCatalog, TopicSpec

log = logging.getLogger(__name__)

SHUTDOWN_CLOSE_REASON = "edge shutting down; reconnect and sync"
CONFLICT_LOGIN_MESSAGE = "signed in again on the same device"
SESSION_WAIT_S = 5.0
"""Longest a sign-in waits for the workers to register the session (see :meth:`EdgeNode.await_session`)."""


class EdgeNode:
    """Everything one edge process holds. Constructing it does no IO; :meth:`start` does."""

    def __init__(self, settings: Settings, *, edge_id: str | None = None) -> None:
        self.settings = settings
        self.edge_id = edge_id or new_edge_id(settings.edge_name)
        self.catalog = TopicCatalog(settings)
        self.registry = ConnectionRegistry(settings.max_connections_per_user)
        self.presence = PresenceFeed()
        """Which socket watches whose presence (``chat.presence`` pushes, :mod:`presence_feed`)."""
        self.idle_sweep = IdleSweep(settings.ws_heartbeat_s * 2)
        self.send_limits = RateLimiter(settings.send_rate_per_s, settings.send_burst)
        self.typing_limits = RateLimiter(max(1.0, settings.send_rate_per_s / 4), max(2, settings.send_burst // 4))
        self.admission = AdmissionGate(settings.edge_max_worker_lag)
        self.started_at_ms = int(time.time() * 1000)
        self.ready = False
        """Started and not stopping (sockets are accepted); ``/readyz`` also needs :attr:`workers`."""
        self.workers = WorkerWatch(
            settings.worker_app_id,
            self.topic(USER_EVENTS),
            start_admin=self._start_admin,
            partitions=lambda: self.publisher.partitions_of(self.topic(USER_EVENTS)),
        )
        self.stopping = False
        self._target: KafkaTarget | None = None
        self._codec: AvroEnvelopeCodec | None = None
        self._store_cm: contextlib.AbstractAsyncContextManager[MessageStore] | None = None
        self._store: MessageStore | None = None
        self._publisher: EventPublisher | None = None
        self._memberships: MembershipCache | None = None
        self._blocker_cache: BlockerCache | None = None
        self._group_states: GroupStateCache | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._consumer: AIOKafkaConsumer | None = None

    # --- resources ----------------------------------------------------------------------

    @property
    def store(self) -> MessageStore:
        assert self._store is not None, "edge not started"
        return self._store

    @property
    def publisher(self) -> EventPublisher:
        assert self._publisher is not None, "edge not started"
        return self._publisher

    @property
    def memberships(self) -> MembershipCache:
        assert self._memberships is not None, "edge not started"
        return self._memberships

    @property
    def blocker_cache(self) -> BlockerCache:
        assert self._blocker_cache is not None, "edge not started"
        return self._blocker_cache

    @property
    def group_states(self) -> GroupStateCache:
        assert self._group_states is not None, "edge not started"
        return self._group_states

    @property
    def codec(self) -> AvroEnvelopeCodec:
        assert self._codec is not None, "edge not started"
        return self._codec

    def topic(self, spec: TopicSpec) -> str:
        return self.catalog.resolve(spec).name

    async def start(self) -> None:
        settings = self.settings
        self._target = resolve_target(settings)
        edge_topic = self.catalog.edge_topic(self.edge_id)
        await ensure_topics(settings, self._target)
        await ensure_topics(settings, self._target, [edge_topic])
        self._codec = build_codec(settings)
        self._store_cm = open_store(settings)
        self._store = await self._store_cm.__aenter__()
        self._memberships = MembershipCache(self._store, settings.membership_cache_s)
        self._blocker_cache = BlockerCache(self._store, settings.membership_cache_s)
        self._group_states = GroupStateCache(self._store, settings.membership_cache_s)
        self._publisher = EventPublisher(settings, self._target, self._codec)
        await self._publisher.start()
        await self._heartbeat()  # the workers know this edge before its first session arrives
        self._consumer = await self._start_consumer(edge_topic.name)
        self._tasks = [
            asyncio.ensure_future(self._deliver_loop(self._consumer)),
            asyncio.ensure_future(self._heartbeat_loop()),
            asyncio.ensure_future(self.idle_sweep.run()),
            asyncio.ensure_future(self.workers.run()),
        ]
        if self.admission.max_lag > 0:
            self._tasks.append(asyncio.ensure_future(self._lag_loop(self._consumer)))
        self.ready = True
        log.info("edge %s ready (delivery topic %s)", self.edge_id, edge_topic.name)

    async def shed_connections(self) -> None:
        """First step of a graceful stop: tell the workers, close every socket with 1001 (going
        away: reconnect elsewhere and sync), and publish a userDisconnected for each."""
        if self.stopping:
            return
        self.stopping = True
        self.ready = False
        if self._publisher is not None:
            with contextlib.suppress(ChatEventsError):
                await self._heartbeat(stopping=True)
        connections = self.registry.all()
        for conn in connections:
            conn.close(Close.GOING_AWAY, SHUTDOWN_CLOSE_REASON)
        await asyncio.gather(*(c.wait_closed(2.0) for c in connections))
        if self._publisher is not None and connections:
            with contextlib.suppress(ChatEventsError):
                await self.publish_disconnects(connections, reason="edge_shutdown", code=Close.GOING_AWAY, forced=True)

    async def stop(self) -> None:
        await self.shed_connections()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
        if self._publisher is not None:
            await self._publisher.stop()
        if self._store_cm is not None:
            await self._store_cm.__aexit__(None, None, None)

    # --- publishing -----------------------------------------------------------------------

    async def publish_disconnects(
        self, connections: Sequence[Connection], *, reason: str, code: int, forced: bool
    ) -> None:
        envelopes = [
            new_envelope(
                UserDisconnected(
                    reason=reason, code=int(code), forced=forced, edge_id=self.edge_id, device_id=c.device_id
                ),
                user_id=c.user_id,
                session_id=c.session_id,
            )
            for c in connections
        ]
        await self.publisher.publish_many(envelopes)

    async def _heartbeat(self, *, stopping: bool = False) -> None:
        topic = self.topic(USER_EVENTS)
        envelope = new_envelope(
            EdgeHeartbeat(
                edge_id=self.edge_id,
                interval_ms=self.settings.edge_heartbeat_interval_ms,
                started_at_ms=self.started_at_ms,
                sessions=len(self.registry),
                stopping=stopping,
            )
        )
        partitions = await self.publisher.partitions_of(topic)
        await self.publisher.send_routed([(topic, self.edge_id.encode(), envelope, p) for p in partitions])

    async def _heartbeat_loop(self) -> None:
        interval = self.settings.edge_heartbeat_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                await self._heartbeat()
                now = time.monotonic()
                self.send_limits.prune(now)
                self.typing_limits.prune(now)
            except Exception:
                log.exception("edge heartbeat failed; retrying next interval")

    async def _lag_loop(self, consumer: AIOKafkaConsumer) -> None:
        """Read the workers' lag on the message path every ``CHAT_EDGE_LAG_CHECK_MS`` and
        open or close the send gate (``backpressure.py``)."""
        assert self._target is not None
        topics = {self.topic(spec): self.catalog.resolve(spec).partitions for spec in (PERSONAL_CHAT, INBOX)}
        admin: AIOKafkaAdminClient | None = None
        try:
            while True:
                await asyncio.sleep(self.settings.edge_lag_check_ms / 1000)
                lag: int | None = None
                try:
                    if admin is None:
                        admin = await self._start_admin()
                    lag = sum((await group_lag(admin, consumer, self.settings.worker_app_id, topics)).values())
                except Exception as exc:  # never let the gate's reader die: retried next interval
                    log.debug("reading the workers' lag failed: %r", exc)
                    if not isinstance(exc, KafkaError) and admin is not None:  # start afresh next time
                        with contextlib.suppress(Exception):
                            await admin.close()
                        admin = None
                was_open = self.admission.open
                self.admission.observe(lag)
                if was_open != self.admission.open:
                    state = "accepting sends again" if self.admission.open else "refusing sends (code 13)"
                    log.warning("workers %s records behind: %s", lag, state)
        finally:
            if admin is not None:
                await admin.close()

    async def _start_admin(self) -> AIOKafkaAdminClient:
        assert self._target is not None
        admin = AIOKafkaAdminClient(**client_options(self.settings, self._target))
        try:
            await admin.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await admin.close()
            raise
        return admin

    async def await_session(self, user_id: str, session_id: str, timeout_s: float = SESSION_WAIT_S) -> bool:
        """Wait until the workers stored this session (so every later inbox write is pushed
        here); True if it showed up. Anything stored before that is what the client syncs."""
        deadline = time.monotonic() + timeout_s
        delay = 0.002
        while True:
            sessions = (await self.store.sessions_of([user_id])).get(user_id, ())
            if any(s.session_id == session_id for s in sessions):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(0.05, delay * 2)

    async def relay_typing(self, user_id: str, typing: Typing, recipients: set[str]) -> None:
        """One userTyping per edge holding a session of a recipient who does not block the
        typist (ephemeral; best effort)."""
        if not recipients:
            return
        recipients = without_blockers(recipients, (await self.store.blockers_of([user_id])).get(user_id, ()))
        if not recipients:
            return
        conversation_id = conversation_of(user_id, typing.target_type, typing.target_id)
        by_edge: dict[str, set[str]] = {}
        for recipient, sessions in (await self.store.sessions_of(recipients)).items():
            for session in sessions:
                by_edge.setdefault(session.edge_id, set()).add(recipient)
        routed = []
        for edge_id, users in by_edge.items():
            event = UserTyping(
                conversation_id=conversation_id,
                target_type=typing.target_type,
                target_id=typing.target_id,
                state=typing.state,
                recipient_ids=tuple(sorted(users)),
            )
            topic = self.catalog.edge_topic(edge_id).name
            routed.append((topic, conversation_id.encode(), new_envelope(event, user_id=user_id), None))
        with contextlib.suppress(ChatEventsError):
            await self.publisher.send_routed(routed)

    # --- deliveries -----------------------------------------------------------------------

    async def _start_consumer(self, edge_topic: str) -> AIOKafkaConsumer:
        assert self._target is not None
        consumer = build_consumer(
            self.settings,
            self._target,
            wake_on=[edge_topic, self.topic(ROOM_MESSAGES), self.topic(PRESENCE)],
            **consumer_options(self.settings, self._target),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        room_topic, presence_topic = self.topic(ROOM_MESSAGES), self.topic(PRESENCE)
        tps: list[TopicPartition] = []
        for topic in (edge_topic, room_topic, presence_topic):  # Apache Kafka lists a topic only once asked for all
            tps.extend(await topic_partitions(consumer, topic, self._target, self.settings.kafka_connect_timeout_s))
        consumer.assign(tps)
        room_tps = [tp for tp in tps if tp.topic in (room_topic, presence_topic)]  # live only: from the end
        edge_tps = [tp for tp in tps if tp.topic == edge_topic]
        if edge_tps:
            await consumer.seek_to_beginning(*edge_tps)
        if room_tps:
            await consumer.seek_to_end(*room_tps)
        return consumer

    async def _deliver_loop(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=1000, max_records=2000)
            except KafkaError:
                log.exception("delivery fetch failed; retrying")
                await asyncio.sleep(0.5)
                continue
            for records in batches.values():
                for record in records:
                    try:
                        envelope = self.codec.decode(record.value)
                        if isinstance(envelope.payload, MessageStored):  # room pushes skip blockers
                            await self.blocker_cache.load(envelope.payload.message.sender_id)
                        elif isinstance(envelope.payload, UserPresenceChanged) and envelope.user_id:
                            await self.presence.load_blocks(self.store, self.blocker_cache, envelope.user_id)
                        self.deliver(envelope)
                    except Exception:
                        log.exception(
                            "undeliverable record at %s[%d]@%d", record.topic, record.partition, record.offset
                        )

    def deliver(self, envelope: Envelope) -> int:
        """Push one envelope from the delivery or room topic to the sockets it concerns;
        returns how many sockets got it."""
        event = envelope.payload
        pushed = 0
        if isinstance(event, MessageDispatched):
            connections = list(self.registry.of_user(event.recipient_id))
            if connections:
                text = output_frame("message", data=delivery_view(event.user_seq, event.message))
                pushed = sum(c.push_delivery(event.user_seq, text) for c in connections)
        elif isinstance(event, MessageDispatchedBatch):
            pushed = self._deliver_batch(event)
        elif isinstance(event, MessageStored):
            message = event.message
            blockers = self._blocker_cache.blockers(message.sender_id) if self._blocker_cache else frozenset()
            subscribers = [
                c
                for c in self.registry.in_room(message.conversation_id)
                if message.seq > c.room_seq and c.user_id not in blockers
            ]
            if subscribers:
                text = output_frame("room_message", data=room_delivery_view(message))
                for conn in subscribers:
                    conn.room_seq = message.seq
                    pushed += conn.push(text)
        else:
            pushed = self._deliver_other(envelope)
        return pushed

    def _deliver_batch(self, event: MessageDispatchedBatch) -> int:
        """One message for several recipients: the message's view is built once, the frame per
        recipient (each has its own seq)."""
        view = message_view(event.message)
        pushed = 0
        for recipient, user_seq in zip(event.recipient_ids, event.user_seqs, strict=True):
            connections = list(self.registry.of_user(recipient))
            if connections:
                text = output_frame("message", data={"user_seq": user_seq, "message": view})
                pushed += sum(c.push_delivery(user_seq, text) for c in connections)
        return pushed

    def _deliver_other(self, envelope: Envelope) -> int:
        """Ephemeral signals (typing) and kicks. Unknown events are ignored: newer workers may
        send more."""
        event = envelope.payload
        if isinstance(event, UserDisconnected):
            return self._kick(envelope, event)
        if isinstance(event, UserPresenceChanged):
            return self.presence.push(envelope.user_id, event) if envelope.user_id else 0
        if isinstance(event, ConversationChanged | ReadReceiptDispatched | DeliveryReceiptDispatched):
            from chat_events.api.conversation_frames import push_conversation_event  # it imports this module

            return push_conversation_event(self.registry, event)
        if not isinstance(event, UserTyping):
            return 0
        data = {
            "conversation_id": event.conversation_id,
            "user_id": envelope.user_id,
            "target_type": event.target_type,
            "target_id": event.target_id,
            "state": event.state,
        }
        text = output_frame("typing", data=data)
        pushed = 0
        for recipient in event.recipient_ids:
            for conn in self.registry.of_user(recipient):
                pushed += conn.push(text)
        return pushed

    def _kick(self, envelope: Envelope, event: UserDisconnected) -> int:
        """The workers ended this session because its device signed in again (on another
        edge): tell the socket and close it with 4007. The session's own close then publishes
        the forced userDisconnected(conflict_login), as for a kick within this edge."""
        if event.reason != "conflict_login" or not envelope.user_id:
            return 0
        kicked = 0
        for conn in list(self.registry.of_user(envelope.user_id)):
            if conn.session_id == envelope.session_id:
                conn.push(output_frame("kicked", code=Code.CONFLICT_LOGIN, message=CONFLICT_LOGIN_MESSAGE))
                conn.close(Close.CONFLICT_LOGIN, "conflict login")
                kicked += 1
        return kicked
