"""Presence in the embedded store (a mixin of :class:`~chat_events.store.embedded.EmbeddedStore`;
the ``user_presence`` table is in ``sqlite_schema.py``). One row per user holding two
independent values: ``last_seen_ms`` (only ever raised, so a replayed or late disconnect changes
nothing) and ``show_last_seen`` (last writer by ``settings_at_ms`` wins)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from chat_events.store.models import Session
from chat_events.store.presence_state import PresenceState

R = TypeVar("R")

_LAST_SEEN = """INSERT INTO user_presence (user_id, last_seen_ms) VALUES (?, ?)
ON CONFLICT (user_id) DO UPDATE SET last_seen_ms = excluded.last_seen_ms
WHERE excluded.last_seen_ms > user_presence.last_seen_ms"""
_SHOW = """INSERT INTO user_presence (user_id, show_last_seen, settings_at_ms) VALUES (?, ?, ?)
ON CONFLICT (user_id) DO UPDATE SET show_last_seen = excluded.show_last_seen, settings_at_ms = excluded.settings_at_ms
WHERE excluded.settings_at_ms >= user_presence.settings_at_ms"""


class EmbeddedPresenceRows:
    if TYPE_CHECKING:  # EmbeddedStore's plumbing and session reads

        async def _run(self, fn: Callable[[], R]) -> R: ...

        def _write(self, fn: Callable[[sqlite3.Connection], R]) -> Callable[[], R]: ...

        def _select(self, sql: str, keys: Any, suffix: str = "") -> list[tuple[Any, ...]]: ...

        async def sessions_of(self, user_ids: Iterable[str]) -> dict[str, tuple[Session, ...]]: ...

    async def record_last_seen(self, user_id: str, at_ms: int) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.execute(_LAST_SEEN, (user_id, at_ms))

        await self._run(self._write(write))

    async def set_show_last_seen(self, user_id: str, show: bool, *, at_ms: int) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.execute(_SHOW, (user_id, show, at_ms))

        await self._run(self._write(write))

    async def presence_of(self, user_ids: Iterable[str]) -> dict[str, PresenceState]:
        wanted = list(dict.fromkeys(user_ids))
        if not wanted:
            return {}
        sql = "SELECT user_id, last_seen_ms, show_last_seen FROM user_presence WHERE user_id IN ({})"
        stored = {row[0]: row for row in await self._run(lambda: self._select(sql, wanted))}
        sessions = await self.sessions_of(wanted)
        found: dict[str, PresenceState] = {}
        for user_id in wanted:
            row = stored.get(user_id)
            found[user_id] = PresenceState(
                user_id=user_id,
                online=bool(sessions.get(user_id)),
                last_seen_ms=(row[1] or None) if row else None,
                show_last_seen=bool(row[2]) if row else True,
            )
        return found
