"""The edge-liveness check both engines run every second (the native worker's task, the Faust
engine's timer): credit the worker's own stalls, then end the sessions of silent edges."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection

from chat_events.kafka.admin import delete_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.producers.partitioner import partition_for
from chat_events.settings import Settings
from chat_events.streams.presence import worker_paused_ms
from chat_events.streams.stage import OutputSink
from chat_events.streams.user_events import UserEventsStage
from chat_events.topics import USER_EVENTS, TopicCatalog

log = logging.getLogger(__name__)
EDGE_CHECK_INTERVAL_S = 1.0


class EdgeExpiry:
    """One worker's edge check. ``owned()`` is the partitions of chat.user-events this worker's
    sessions stage holds now."""

    def __init__(
        self,
        settings: Settings,
        target: KafkaTarget,
        sessions: UserEventsStage,
        sink: OutputSink,
        owned: Callable[[], Collection[int]],
        caught_up: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._caught_up = caught_up
        """Whether the sessions stage has read its partitions of chat.user-events to their end;
        while it is behind, the heartbeats it has not read are not an edge's silence."""
        self._settings = settings
        self._target = target
        self._sessions = sessions
        self._sink = sink
        self._owned = owned
        self._partitions = TopicCatalog(settings).resolve(USER_EVENTS).partitions

    def owns_user(self, user_id: str) -> bool:
        return partition_for(user_id.encode(), self._partitions) in self._owned()

    def credit(self, gap_s: float, interval_s: float = EDGE_CHECK_INTERVAL_S) -> None:
        """The check ran ``gap_s`` after the previous one: the time the worker was not running
        does not count towards any edge's silence (the heartbeats meanwhile are unread)."""
        paused_ms = worker_paused_ms(gap_s, interval_s)
        self._sessions.monitor.credit(paused_ms)
        if paused_ms > interval_s * 1000:
            log.info("worker was not running for %.1fs: no edge's silence counts it", paused_ms / 1000)

    async def expire(self, interval_s: float = EDGE_CHECK_INTERVAL_S) -> None:
        """Never raises: a failed round is logged and the edges are checked again next tick. A
        round while the sessions stage is behind on its input ends nothing and credits its
        interval to every edge (a lagging stage sees heartbeats late, not edges dying)."""
        sessions = self._sessions
        dead: list[str] = []
        try:
            if self._caught_up is not None and not await self._caught_up():
                sessions.monitor.credit(interval_s * 1000)
                return
            outputs, dead = await sessions.expire_silent_edges(self.owns_user)
            if outputs:
                await self._sink.send_outputs(outputs)
            if dead and 0 in self._owned():  # one worker cleans up the dead edges' delivery topics
                catalog = TopicCatalog(self._settings)
                topics = [catalog.edge_topic(edge).name for edge in dead]
                deleted = await delete_topics(self._settings, self._target, topics)
                if deleted:
                    log.info("deleted delivery topics of dead edges: %s", ", ".join(deleted))
        except Exception:
            log.exception("edge expiry round failed; retrying next tick")
            sessions.monitor.rearm(dead)
