"""Presence in the Cassandra store (a mixin of :class:`~chat_events.store.cassandra.CassandraStore`;
the ``user_presence`` table is in ``schemas/cassandra.cql``). Each write sets only its own
columns (an INSERT of some columns leaves the others), after reading the row: ``last_seen_ms``
only ever rises, ``show_last_seen`` follows the last writer by ``settings_at_ms``. The port's
one writer per user (the sessions stage owning the user's partition) makes read-then-write safe,
as for the other status rows (:mod:`chat_events.store.cassandra_settings`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from chat_events.store.cassandra_driver import CqlSession
from chat_events.store.models import Session
from chat_events.store.presence_state import PresenceState

PRESENCE_STATEMENTS: dict[str, str] = {
    "presence_in": "SELECT user_id, last_seen_ms, show_last_seen, settings_at_ms FROM user_presence WHERE user_id IN ?",
    "presence_last_seen": "INSERT INTO user_presence (user_id, last_seen_ms) VALUES (?, ?)",
    "presence_show": "INSERT INTO user_presence (user_id, show_last_seen, settings_at_ms) VALUES (?, ?, ?)",
}
"""The statements of this mixin, prepared with the store's."""


class PresenceTables:
    _db: CqlSession

    if TYPE_CHECKING:  # the store's (SocialTables)

        async def sessions_of(self, user_ids: Iterable[str]) -> dict[str, tuple[Session, ...]]: ...

    async def record_last_seen(self, user_id: str, at_ms: int) -> None:
        found = await self._db.lookup("presence_in", {(): [user_id]})
        if found and (found[0]["last_seen_ms"] or 0) >= at_ms:
            return
        await self._db.rows("presence_last_seen", user_id, at_ms)

    async def set_show_last_seen(self, user_id: str, show: bool, *, at_ms: int) -> None:
        found = await self._db.lookup("presence_in", {(): [user_id]})
        if found and (found[0]["settings_at_ms"] or 0) > at_ms:
            return
        await self._db.rows("presence_show", user_id, show, at_ms)

    async def presence_of(self, user_ids: Iterable[str]) -> dict[str, PresenceState]:
        wanted = list(dict.fromkeys(user_ids))
        if not wanted:
            return {}
        stored = {row["user_id"]: row for row in await self._db.lookup("presence_in", {(): wanted})}
        sessions = await self.sessions_of(wanted)
        found: dict[str, PresenceState] = {}
        for user_id in wanted:
            row = stored.get(user_id)
            found[user_id] = PresenceState(
                user_id=user_id,
                online=bool(sessions.get(user_id)),
                last_seen_ms=(row["last_seen_ms"] or None) if row else None,
                show_last_seen=row is None or row["show_last_seen"] is not False,
            )
        return found
