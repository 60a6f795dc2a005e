"""Per-user settings in the Cassandra store (a mixin of
:class:`~chat_events.store.cassandra.CassandraStore`; the ``user_settings`` table is in
``schemas/cassandra.cql``). Last writer by ``at_ms`` wins, read-then-write like the other
status rows (:mod:`chat_events.store.cassandra_social`): the port's one writer per user makes
it safe."""

from __future__ import annotations

from collections.abc import Iterable

from chat_events.store.cassandra_driver import CqlSession

SETTINGS_STATEMENTS: dict[str, str] = {
    "settings_in": "SELECT user_id, read_receipts, updated_at_ms FROM user_settings WHERE user_id IN ?",
    "settings_set": "INSERT INTO user_settings (user_id, read_receipts, updated_at_ms) VALUES (?, ?, ?)",
}
"""The statements of this mixin, prepared with the store's."""


class SettingsTables:
    _db: CqlSession

    async def set_read_receipts(self, user_id: str, enabled: bool, *, at_ms: int) -> None:
        found = await self._db.lookup("settings_in", {(): [user_id]})
        if found and (found[0]["updated_at_ms"] or 0) > at_ms:
            return
        await self._db.rows("settings_set", user_id, enabled, at_ms)

    async def read_receipts_enabled(self, user_ids: Iterable[str]) -> dict[str, bool]:
        wanted = list(dict.fromkeys(user_ids))
        found: dict[str, bool] = {u: True for u in wanted}
        if wanted:
            for row in await self._db.lookup("settings_in", {(): wanted}):
                found[row["user_id"]] = row["read_receipts"] is not False
        return found
