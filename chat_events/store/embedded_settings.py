"""Per-user settings in the embedded store (a mixin of
:class:`~chat_events.store.embedded.EmbeddedStore`; the ``user_settings`` table is in
``sqlite_schema.py``). One row per user; last writer by ``at_ms`` wins, so a replay or an older
change is a no-op."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

R = TypeVar("R")

_UPSERT = """INSERT INTO user_settings (user_id, read_receipts, updated_at_ms) VALUES (?, ?, ?)
ON CONFLICT (user_id) DO UPDATE SET read_receipts = excluded.read_receipts, updated_at_ms = excluded.updated_at_ms
WHERE excluded.updated_at_ms >= user_settings.updated_at_ms"""


class EmbeddedSettingsRows:
    if TYPE_CHECKING:  # EmbeddedStore's plumbing

        @property
        def _conn(self) -> sqlite3.Connection: ...

        async def _run(self, fn: Callable[[], R]) -> R: ...

        def _write(self, fn: Callable[[sqlite3.Connection], R]) -> Callable[[], R]: ...

        def _select(self, sql: str, keys: Any, suffix: str = "") -> list[tuple[Any, ...]]: ...

    async def set_read_receipts(self, user_id: str, enabled: bool, *, at_ms: int) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.execute(_UPSERT, (user_id, enabled, at_ms))

        await self._run(self._write(write))

    async def read_receipts_enabled(self, user_ids: Iterable[str]) -> dict[str, bool]:
        wanted = list(dict.fromkeys(user_ids))
        found: dict[str, bool] = {u: True for u in wanted}
        if wanted:
            sql = "SELECT user_id, read_receipts FROM user_settings WHERE user_id IN ({})"
            for user_id, enabled in await self._run(lambda: self._select(sql, wanted)):
                found[user_id] = bool(enabled)
        return found
