"""Changes to sent messages in the embedded store (issue 16): edits, recalls and deletes as an
update of the message row, reactions, and "delete for me" (a mixin of
:class:`~chat_events.store.embedded.EmbeddedStore`; the ``reactions`` and ``hidden_messages``
tables are in ``sqlite_schema.py``). Nothing is deleted: a removed reaction is ``active = 0``."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from chat_events.events.types import ChatMessage
from chat_events.store import sqlite_rows as rows
from chat_events.store.message_changes import active_reactions
from chat_events.store.models import Reaction

R = TypeVar("R")

_UPSERT_REACTION = """INSERT INTO reactions (message_id, user_id, emoji, active, at_ms) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (message_id, user_id, emoji) DO UPDATE SET active = excluded.active, at_ms = excluded.at_ms
WHERE excluded.at_ms >= reactions.at_ms"""
"""Last writer by ``at_ms`` wins: a stored newer reaction is left as it is (replays are no-ops)."""

_HIDE = "INSERT INTO hidden_messages (user_id, message_id, at_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"


class EmbeddedChangeRows:
    """The changes half of the port on SQLite: the plumbing is :class:`EmbeddedStore`'s."""

    if TYPE_CHECKING:  # EmbeddedStore's plumbing

        async def _run(self, fn: Callable[[], R]) -> R: ...

        def _write(self, fn: Callable[[sqlite3.Connection], R]) -> Callable[[], R]: ...

        def _select(self, sql: str, keys: Any, suffix: str = "") -> list[tuple[Any, ...]]: ...

        def _select_pairs(
            self, cols: str, table: str, a: str, b: str, keys: Sequence[tuple[str, str]]
        ) -> list[tuple[Any, ...]]: ...

    async def update_messages(self, messages: Sequence[ChatMessage]) -> None:
        """See the port: one ``UPDATE ... WHERE message_id = ?`` per message in one
        transaction, so a message that is not stored matches no row and nothing is created."""
        values = [rows.message_update_row(m) for m in messages]
        if not values:
            return

        def write(db: sqlite3.Connection) -> None:
            db.executemany(rows.UPDATE_MESSAGE, values)

        await self._run(self._write(write))

    async def save_reactions(self, reactions: Sequence[Reaction]) -> None:
        """See the port: an upsert per reaction, in order, that keeps a newer stored one."""
        values = [(r.message_id, r.user_id, r.emoji, r.active, r.at_ms) for r in reactions]
        if not values:
            return

        def write(db: sqlite3.Connection) -> None:
            db.executemany(_UPSERT_REACTION, values)

        await self._run(self._write(write))

    async def reactions_of(self, message_ids: Iterable[str]) -> dict[str, dict[str, tuple[str, ...]]]:
        ids = list(dict.fromkeys(message_ids))
        if not ids:
            return {}
        sql = "SELECT message_id, user_id, emoji, active, at_ms FROM reactions WHERE active = 1 AND message_id IN ({})"
        found = await self._run(lambda: self._select(sql, ids))
        return active_reactions(
            Reaction(message_id=m, user_id=u, emoji=e, active=bool(a), at_ms=t) for m, u, e, a, t in found
        )

    async def hide_messages(self, user_id: str, message_ids: Iterable[str], *, at_ms: int) -> None:
        """See the port: a row per message; hiding again keeps the first row (and its time)."""
        values = [(user_id, mid, at_ms) for mid in dict.fromkeys(message_ids)]
        if not values:
            return

        def write(db: sqlite3.Connection) -> None:
            db.executemany(_HIDE, values)

        await self._run(self._write(write))

    async def hidden_messages(self, user_id: str, message_ids: Iterable[str]) -> frozenset[str]:
        keys = [(user_id, mid) for mid in dict.fromkeys(message_ids)]
        if not keys:
            return frozenset()
        found = await self._run(
            lambda: self._select_pairs("message_id", "hidden_messages", "user_id", "message_id", keys)
        )
        return frozenset(row[0] for row in found)
