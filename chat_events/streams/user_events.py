"""Sessions stage: ``chat.user-events`` (keyed by user) -> sessions, presence, blocks,
rate-limit accounting, and edge liveness.

* userConnected / userDisconnected keep ``user -> sessions {session, edge, device, since}`` in
  the store and emit ``userPresenceChanged`` to ``chat.presence`` when the first session opens
  or the last one closes.
* Conflict login: a userConnected for a device that already has a session (on any edge) ends
  the older session and sends a forced ``userDisconnected(reason="conflict_login", code=4007)``
  to the older session's edge (``chat.edge.<edge_id>``, keyed by user), which tells that
  socket it was ``kicked`` and closes it. (Within one edge, the edge kicks at once itself.)
* edgeHeartbeat is published by every edge to *every* partition of this topic, so each
  partition's owner tracks every edge in line with that partition's session events. An edge
  that goes silent (or says it is stopping) has its sessions ended: the owner publishes a
  forced userDisconnected for each session whose user it owns, and this stage then processes
  those like any other disconnect.
* userBlocked / userUnblocked set the block as a status (the fan-out reads it).
* Last seen (issue 16, item 6): when the last session closes, its time is stored as the user's
  last seen; presenceSettingsSet stores whether others may see it and emits the user's current
  presence again, so the edges' ``presence`` pushes follow a change of the setting. Every
  userPresenceChanged carries the setting (``show_last_seen``).
* userChatRateLimited is counted per user and window for moderation and analytics.
* deviceAcked raises the device's stored sync progress (never backwards; ``device_acks.py``),
  written before the batch's next session change so a sign-in after it reads it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from chat_events.events.factory import new_envelope
from chat_events.events.presence_events import PresenceSettingsSet
from chat_events.events.types import (
    DeviceAcked,
    EdgeHeartbeat,
    UserBlocked,
    UserChatRateLimited,
    UserConnected,
    UserDisconnected,
    UserPresenceChanged,
    UserUnblocked,
)
from chat_events.store.models import Session
from chat_events.store.port import MessageStore
from chat_events.streams.device_acks import PendingAcks
from chat_events.streams.presence import (
    EdgeMonitor,
    SessionChange,
    connect,
    current_presence,
    disconnect,
    edge_end_log,
    is_stale,
    superseded,
)
from chat_events.streams.records import Incoming, Output, Reject, StageResult, output_envelope_id, timestamp_ms

log = logging.getLogger(__name__)

EDGE_TIMEOUT_CODE = 1001
"""userDisconnected.code for sessions ended because their edge stopped answering (going away)."""
CONFLICT_LOGIN_CODE = 4007
"""userDisconnected.code for a session replaced by a newer one of the same device (the edge's
close code for a conflict login, ``api.protocol.Close.CONFLICT_LOGIN``)."""

_READS_SESSIONS = (UserConnected.EVENT_NAME, UserDisconnected.EVENT_NAME, PresenceSettingsSet.EVENT_NAME)
"""Events whose handling needs the user's sessions (read once per batch)."""


class UserEventsStage:
    name = "sessions"
    accepts = frozenset(
        {
            UserConnected.EVENT_NAME,
            UserDisconnected.EVENT_NAME,
            EdgeHeartbeat.EVENT_NAME,
            UserBlocked.EVENT_NAME,
            UserUnblocked.EVENT_NAME,
            UserChatRateLimited.EVENT_NAME,
            DeviceAcked.EVENT_NAME,  # the device's sync progress (device_acks.py)
            PresenceSettingsSet.EVENT_NAME,  # show or hide last seen (issue 16, item 6)
        }
    )

    def __init__(
        self,
        store: MessageStore,
        *,
        presence_topic: str,
        user_events_topic: str,
        edge_topic: Callable[[str], str],
        rate_limit_window_ms: int,
        edge_timeout_ms: int,
        clock: Callable[[], float] = time.monotonic,
        receipts_max_group: int = 100,
    ) -> None:
        self._store = store
        self._receipts_max_group = receipts_max_group
        self._presence_topic = presence_topic
        self._user_events_topic = user_events_topic
        self._edge_topic = edge_topic
        self._window_ms = rate_limit_window_ms
        self._clock = clock
        self.monitor = EdgeMonitor(edge_timeout_ms)

    def reset(self) -> None:
        """Stateless apart from the edge monitor, which survives retries on purpose."""

    def _now_ms(self) -> float:
        return self._clock() * 1000

    async def handle(self, batch: Sequence[Incoming]) -> StageResult:
        result = StageResult()
        session_users = {i.envelope.user_id for i in batch if i.envelope.user_id and i.envelope.name in _READS_SESSIONS}
        sessions = dict(await self._store.sessions_of(session_users)) if session_users else {}
        shows: dict[str, bool] = {}  # users' last-seen setting, read when first needed in this batch
        acks = PendingAcks(
            self._store, edge_topic=self._edge_topic, stage=self.name, receipts_max_group=self._receipts_max_group
        )
        for item in batch:
            envelope, event = item.envelope, item.envelope.payload
            if isinstance(event, DeviceAcked) and envelope.user_id:
                acks.add(envelope.user_id, event, item)
                continue
            if isinstance(event, EdgeHeartbeat):
                self.monitor.heartbeat(
                    event.edge_id, now_ms=self._now_ms(), interval_ms=event.interval_ms, stopping=event.stopping
                )
                continue
            user_id = envelope.user_id
            if not user_id:
                result.rejects.append(Reject(item.record, "invalid_event", f"{envelope.name} needs userId"))
                continue
            at_ms = timestamp_ms(envelope.timestamp)
            if isinstance(event, UserConnected | UserDisconnected):
                if not envelope.session_id or (isinstance(event, UserConnected) and not event.edge_id):
                    reason = f"{envelope.name} needs sessionId" + (
                        " and edge_id" if isinstance(event, UserConnected) else ""
                    )
                    result.rejects.append(Reject(item.record, "invalid_event", reason))
                    continue
                result.outputs.extend(await acks.flush())  # a sign-in seeing this change sees the acks before it
                change, kicks = await self._apply_session(item, event, sessions.get(user_id, ()), at_ms)
                sessions[user_id] = change.sessions
                result.outputs.extend(kicks)
                if change.presence == "offline":
                    await self._store.record_last_seen(user_id, at_ms)
                if change.presence:
                    show = await self._show_last_seen(user_id, shows)
                    result.outputs.append(self._presence(item, user_id, change, show))
            elif isinstance(event, PresenceSettingsSet):
                await self._store.set_show_last_seen(user_id, event.show_last_seen, at_ms=event.set_at_ms)
                result.outputs.append(await self._presence_now(item, user_id, sessions.get(user_id, ()), shows))
            elif isinstance(event, UserBlocked | UserUnblocked):
                active = isinstance(event, UserBlocked)
                await self._store.set_block(user_id, event.blocked_id, active=active, at_ms=at_ms)
            elif isinstance(event, UserChatRateLimited):
                window_start = at_ms - at_ms % self._window_ms
                await self._store.record_rate_limited(user_id, window_start, envelope.id, event.action)
        result.outputs.extend(await acks.flush())
        return result

    async def _apply_session(
        self, item: Incoming, event: UserConnected | UserDisconnected, current: tuple[Session, ...], at_ms: int
    ) -> tuple[SessionChange, list[Output]]:
        envelope = item.envelope
        user_id, session_id = envelope.user_id or "", envelope.session_id or ""
        if isinstance(event, UserDisconnected):
            await self._store.end_session(user_id, session_id, at_ms=at_ms)
            return disconnect(current, session_id), []
        session = Session(
            user_id=user_id,
            session_id=session_id,
            edge_id=event.edge_id or "",
            device_id=event.device_id,
            since_ms=at_ms,
        )
        if is_stale(current, session):  # a newer session of this device exists: end this one
            log.info(
                "%s: connect of %s's session %s is older than the device's current one", self.name, user_id, session_id
            )
            stale = [] if self.monitor.is_expired(session.edge_id) else [self._kick(item, session)]
            return SessionChange(current, None), stale
        replaced = superseded(current, session)
        kicks = []
        for old in replaced:
            await self._store.end_session(user_id, old.session_id, at_ms=at_ms)
            if not self.monitor.is_expired(old.edge_id):  # a dead edge's topic may be gone
                kicks.append(self._kick(item, old))
        await self._store.save_session(session)
        self.monitor.touch([session.edge_id], now_ms=self._now_ms())
        change = connect(current, session)  # presence as before the kicks: the user stays online
        return SessionChange(tuple(s for s in change.sessions if s not in replaced), change.presence), kicks

    def _kick(self, item: Incoming, old: Session) -> Output:
        """The forced userDisconnected that tells ``old``'s edge to close its socket."""
        event = UserDisconnected(
            reason="conflict_login", code=CONFLICT_LOGIN_CODE, forced=True, edge_id=old.edge_id, device_id=old.device_id
        )
        envelope = new_envelope(
            event,
            user_id=old.user_id,
            session_id=old.session_id,
            trace_id=item.envelope.trace_id,
            envelope_id=output_envelope_id(item.envelope.id, self.name, f"superseded/{old.session_id}"),
        )
        return Output(self._edge_topic(old.edge_id), old.user_id.encode(), envelope)

    async def _show_last_seen(self, user_id: str, shows: dict[str, bool]) -> bool:
        if user_id not in shows:
            shows[user_id] = (await self._store.presence_of([user_id]))[user_id].show_last_seen
        return shows[user_id]

    async def _presence_now(
        self, item: Incoming, user_id: str, sessions: tuple[Session, ...], shows: dict[str, bool]
    ) -> Output:
        """The user's presence as it is (after a change of the last-seen setting)."""
        stored = (await self._store.presence_of([user_id]))[user_id]
        shows[user_id] = stored.show_last_seen
        status, changed_at_ms = current_presence(sessions, stored.last_seen_ms)
        event = UserPresenceChanged(
            status=status, sessions=len(sessions), changed_at_ms=changed_at_ms, show_last_seen=stored.show_last_seen
        )
        return self._presence_output(item, user_id, event)

    def _presence(self, item: Incoming, user_id: str, change: SessionChange, show_last_seen: bool) -> Output:
        assert change.presence is not None
        event = UserPresenceChanged(
            status=change.presence,
            sessions=len(change.sessions),
            changed_at_ms=timestamp_ms(item.envelope.timestamp),
            show_last_seen=show_last_seen,
        )
        return self._presence_output(item, user_id, event)

    def _presence_output(self, item: Incoming, user_id: str, event: UserPresenceChanged) -> Output:
        envelope = new_envelope(
            event,
            user_id=user_id,
            trace_id=item.envelope.trace_id,
            envelope_id=output_envelope_id(item.envelope.id, self.name, "presence"),
        )
        return Output(self._presence_topic, user_id.encode(), envelope)

    async def expire_silent_edges(self, owns_user: Callable[[str], bool]) -> tuple[list[Output], list[str]]:
        """Forced userDisconnected for every session (of a user this worker owns) on an edge
        whose heartbeat is overdue or that announced it is stopping. Returns the envelopes to
        publish and the dead edges (whose delivery topics can go)."""
        dead = self.monitor.due(now_ms=self._now_ms())
        outputs: list[Output] = []
        for edge_id in dead:
            sessions = [s for s in await self._store.sessions_on_edge(edge_id) if owns_user(s.user_id)]
            level, what = edge_end_log(self.monitor.stopped_cleanly(edge_id), len(sessions))
            log.log(level, "edge %s %s: ending %d sessions", edge_id, what, len(sessions))
            for session in sessions:
                event = UserDisconnected(
                    reason="edge_timeout",
                    code=EDGE_TIMEOUT_CODE,
                    forced=True,
                    edge_id=edge_id,
                    device_id=session.device_id,
                )
                envelope = new_envelope(
                    event,
                    user_id=session.user_id,
                    session_id=session.session_id,
                    envelope_id=output_envelope_id(session.session_id, self.name, f"expired/{edge_id}"),
                )
                outputs.append(Output(self._user_events_topic, session.user_id.encode(), envelope))
        return outputs, dead

    async def watch_stored_edges(self) -> None:
        """Start the clock for edges known only from stored sessions (e.g. an edge that died
        while no worker ran): without a heartbeat they expire after one timeout."""
        self.monitor.touch(await self._store.active_edge_ids(), now_ms=self._now_ms())
