"""Closing silent sockets: one periodic sweep over the open sockets of an edge, not a timer
(or a task) per socket per receive.

A socket from which nothing arrives for ``idle_s`` (``2 * CHAT_WS_HEARTBEAT_S``) is closed with
4000. Each session records when its reader started waiting (``Connection.idle_since_s``); the
sweep wakes the reader of every socket silent for ``idle_s`` or longer, and the reader closes
it. So a silent socket is closed between ``idle_s`` and ``idle_s + interval_s`` after its
last frame.
"""

from __future__ import annotations

import asyncio
import logging
import time

from chat_events.api.connection import Connection

log = logging.getLogger(__name__)


def sweep_interval_s(idle_s: float) -> float:
    """How often the sweep runs: a twentieth of the idle timeout, between 50 ms and 1 s."""
    return min(1.0, max(0.05, idle_s / 20))


def is_idle(idle_since_s: float, now_s: float, idle_s: float) -> bool:
    """Silent for ``idle_s`` or longer (the same rule as a ``idle_s`` timeout on each receive)."""
    return now_s - idle_since_s >= idle_s


class IdleSweep:
    """The sockets being read, and which of them are silent too long."""

    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self.interval_s = sweep_interval_s(idle_s)
        self._watched: set[Connection] = set()

    def __len__(self) -> int:
        return len(self._watched)

    def watch(self, conn: Connection) -> None:
        self._watched.add(conn)

    def unwatch(self, conn: Connection) -> None:
        self._watched.discard(conn)

    def is_idle(self, conn: Connection, now_s: float) -> bool:
        return is_idle(conn.idle_since_s, now_s, self.idle_s)

    def idle(self, now_s: float) -> list[Connection]:
        idle_s = self.idle_s
        return [c for c in self._watched if is_idle(c.idle_since_s, now_s, idle_s)]

    def sweep(self, now_s: float) -> int:
        """Wake the reader of every socket silent too long; returns how many."""
        expired = self.idle(now_s)
        for conn in expired:
            if conn.wake is not None:
                conn.wake()
        return len(expired)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.sweep(time.monotonic())
            except Exception:
                log.exception("idle sweep failed; retrying next interval")
