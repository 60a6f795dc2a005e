"""Seq ranges of a conversation and device sync progress in the embedded store (a mixin of
:class:`~chat_events.store.embedded.EmbeddedStore`, split out to keep modules small; the
``device_progress`` table is in ``sqlite_schema.py``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from chat_events.events.types import ChatMessage
from chat_events.store import sqlite_rows as rows
from chat_events.store.models import Page
from chat_events.store.progress import DeviceKey, DeviceProgress

R = TypeVar("R")

_UPSERT_PROGRESS = """INSERT INTO device_progress (user_id, device_id, acked_seq, acked_at_ms) VALUES (?, ?, ?, ?)
ON CONFLICT (user_id, device_id) DO UPDATE SET acked_seq = excluded.acked_seq, acked_at_ms = excluded.acked_at_ms
WHERE excluded.acked_seq > device_progress.acked_seq"""


class EmbeddedSyncRows:
    """The sync half of the port on SQLite: the plumbing is :class:`EmbeddedStore`'s."""

    if TYPE_CHECKING:  # EmbeddedStore's plumbing

        @property
        def _conn(self) -> sqlite3.Connection: ...

        async def _run(self, fn: Callable[[], R]) -> R: ...

        def _write(self, fn: Callable[[sqlite3.Connection], R]) -> Callable[[], R]: ...

        def _select_pairs(
            self, cols: str, table: str, a: str, b: str, keys: Sequence[tuple[str, str]]
        ) -> list[tuple[Any, ...]]: ...

    async def conversation_range(
        self, conversation_id: str, from_seq: int, to_seq: int, limit: int = 50
    ) -> Page[ChatMessage]:
        """See the port: one indexed range read of ``limit + 1`` rows (the extra one says
        whether the range goes on)."""
        want = max(limit, 0)
        query = (
            f"SELECT {rows.MESSAGE_COLS} FROM messages WHERE conversation_id = ? AND seq >= ? AND seq <= ? "
            "ORDER BY seq ASC LIMIT ?"
        )
        found = await self._run(
            lambda: self._conn.execute(query, (conversation_id, from_seq, to_seq, want + 1)).fetchall()
        )
        return Page(tuple(map(rows.message_from_row, found[:want])), has_more=len(found) > want)

    async def advance_device_progress(self, progress: Sequence[DeviceProgress]) -> None:
        """See the port: an upsert that only ever raises ``acked_seq`` (one transaction)."""
        values = [(p.user_id, p.device_id, p.acked_seq, p.acked_at_ms) for p in progress]
        if not values:
            return

        def write(db: sqlite3.Connection) -> None:
            db.executemany(_UPSERT_PROGRESS, values)

        await self._run(self._write(write))

    async def device_progress(self, keys: Iterable[DeviceKey]) -> dict[DeviceKey, DeviceProgress]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        cols = "user_id, device_id, acked_seq, acked_at_ms"
        found = await self._run(lambda: self._select_pairs(cols, "device_progress", "user_id", "device_id", wanted))
        return {
            (user, device): DeviceProgress(user_id=user, device_id=device, acked_seq=seq, acked_at_ms=at_ms)
            for user, device, seq, at_ms in found
        }
