"""Sessions and presence: pure transitions, plus the edge-liveness monitor.

A user is *online* while they have at least one session. Presence changes only on the first
session opening and the last one closing; replays of a connect or disconnect change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from chat_events.store.models import Session

Presence = Literal["online", "offline"]


@dataclass(frozen=True, slots=True)
class SessionChange:
    sessions: tuple[Session, ...]
    presence: Presence | None
    """``"online"``/``"offline"`` when the user's presence flipped, else None."""


def connect(sessions: tuple[Session, ...], session: Session) -> SessionChange:
    """Add (or refresh) ``session``; online if it is the user's first."""
    others = tuple(s for s in sessions if s.session_id != session.session_id)
    return SessionChange((*others, session), "online" if not sessions else None)


def current_presence(sessions: tuple[Session, ...], last_seen_ms: int | None) -> tuple[Presence, int]:
    """The user's presence as it stands, and since when (pure): online since their oldest
    session started, or offline since their last seen (0 when they were never seen). What a
    ``userPresenceChanged`` re-sent after a change of the last-seen setting says."""
    if sessions:
        return "online", min(s.since_ms for s in sessions)
    return "offline", last_seen_ms or 0


def _age(session: Session) -> tuple[int, str]:
    """Which of two sessions is older: the earlier ``since_ms``, ties broken by session id."""
    return (session.since_ms, session.session_id)


def _same_device(a: Session, b: Session) -> bool:
    return bool(a.device_id) and a.device_id == b.device_id and a.session_id != b.session_id


def superseded(sessions: tuple[Session, ...], session: Session) -> tuple[Session, ...]:
    """The sessions ``session`` replaces: the same user's *older* sessions on the same device
    (conflict login: one device, one session, on whichever edge). Older is by ``since_ms`` (ties
    broken by session id), so a replayed or late-arriving older connect never ends a newer
    session. Sessions without a device id are never superseded."""
    return tuple(s for s in sessions if _same_device(s, session) and _age(s) < _age(session))


def is_stale(sessions: tuple[Session, ...], session: Session) -> bool:
    """Whether a newer session of the same device already exists: ``session``'s connect is a
    replay, or arrived after the newer one's; it is the one to end."""
    return any(_same_device(s, session) and _age(s) > _age(session) for s in sessions)


def disconnect(sessions: tuple[Session, ...], session_id: str) -> SessionChange:
    """Remove ``session_id``; offline if it was the user's last. Unknown ids change nothing."""
    remaining = tuple(s for s in sessions if s.session_id != session_id)
    flipped = len(remaining) < len(sessions) and not remaining
    return SessionChange(remaining, "offline" if flipped else None)


def edge_end_log(stopped: bool, sessions: int) -> tuple[int, str]:
    """Level and wording of the line a worker logs when it ends an edge's ``sessions`` (pure).

    An edge that announced its stop (a stopping heartbeat) has already ended its sessions
    itself: with none left that is the normal end of an edge, INFO. Sessions left on a stopped
    edge (their userDisconnected was lost) or an edge gone silent (crashed, cut off) need an
    operator's attention: WARNING."""
    if stopped:
        return (logging.INFO if sessions == 0 else logging.WARNING), "stopped"
    return logging.WARNING, "is silent"


def worker_paused_ms(gap_s: float, interval_s: float) -> float:
    """How long a check meant to run every ``interval_s``, that ran ``gap_s`` after the previous
    one, says this worker itself was not running (SIGSTOP, a long GC-like pause, an event loop
    held up) (pure). Heartbeats sent meanwhile wait unread in its input, so that time is the
    worker's silence, not the edges': the monitor credits it to every edge
    (:meth:`EdgeMonitor.credit`). A stall of any length counts, not only one past a threshold:
    a 1.8 s stop against a 2 s edge timeout would otherwise end every session of a live edge."""
    return max(0.0, gap_s - interval_s) * 1000


class EdgeMonitor:
    """Last heartbeat per edge, by the monitor's own clock (not the edge's), so a worker that
    lags behind its input cannot declare an edge dead from old timestamps: an edge is seen
    when its heartbeat is *processed*.

    Edges not heard from since the monitor (re)started get a full timeout of grace from
    :meth:`reset`, so a restarted worker does not expire everyone at once.
    """

    def __init__(self, default_timeout_ms: int) -> None:
        self._default_timeout_ms = default_timeout_ms
        self._seen: dict[str, tuple[float, int]] = {}
        self._stopped: set[str] = set()
        self._expired: dict[str, bool] = {}
        """Edges declared dead -> whether they had announced their stop."""

    def heartbeat(self, edge_id: str, *, now_ms: float, interval_ms: int, stopping: bool = False) -> None:
        timeout = max(self._default_timeout_ms, 3 * interval_ms)
        self._seen[edge_id] = (now_ms, timeout)
        self._expired.pop(edge_id, None)
        if stopping:
            self._stopped.add(edge_id)
        else:
            self._stopped.discard(edge_id)

    def touch(self, edge_ids: Iterable[str], *, now_ms: float) -> None:
        """Edges known from stored sessions: start their clock if it is not running."""
        for edge_id in edge_ids:
            if edge_id not in self._seen and edge_id not in self._expired:
                self._seen[edge_id] = (now_ms, self._default_timeout_ms)

    def due(self, *, now_ms: float) -> list[str]:
        """Edges that said they are stopping or whose heartbeat is overdue; each is reported
        once (until it sends a heartbeat again)."""
        dead = sorted(
            edge for edge, (seen, timeout) in self._seen.items() if edge in self._stopped or now_ms - seen > timeout
        )
        for edge in dead:
            del self._seen[edge]
            self._expired[edge] = edge in self._stopped
            self._stopped.discard(edge)
        return dead

    def is_expired(self, edge_id: str) -> bool:
        """Whether ``edge_id`` was declared dead (and has not sent a heartbeat since)."""
        return edge_id in self._expired

    def stopped_cleanly(self, edge_id: str) -> bool:
        """Whether an edge :meth:`due` reported had announced its stop (rather than gone silent)."""
        return self._expired.get(edge_id, False)

    def rearm(self, edge_ids: Iterable[str]) -> None:
        """Report ``edge_ids`` as due again (their expiry could not be completed)."""
        for edge_id in edge_ids:
            if self._expired.pop(edge_id, False):
                self._stopped.add(edge_id)
            self._seen[edge_id] = (float("-inf"), self._default_timeout_ms)

    def credit(self, paused_ms: float) -> None:
        """Move every edge's last heartbeat ``paused_ms`` later: the time this worker was not
        running does not count towards any edge's silence (:func:`worker_paused_ms`)."""
        if paused_ms > 0:
            self._seen = {edge: (seen + paused_ms, timeout) for edge, (seen, timeout) in self._seen.items()}

    def reset(self, *, now_ms: float) -> None:
        self._seen = {edge: (now_ms, timeout) for edge, (_, timeout) in self._seen.items()}
        self._expired.clear()
