"""Seq ranges of a conversation and device sync progress in the Cassandra store (a mixin of
:class:`~chat_events.store.cassandra.CassandraStore`, split out to keep modules small).

``device_progress`` (``schemas/cassandra.cql``) is one row per ``(user_id, device_id)``,
partitioned by user. "Never backwards" without a lightweight transaction: the rows are read and
only those an ack raises are written; the port's one writer per user (the sessions stage that
owns the user's partition of ``chat.user-events``) makes the read-then-write safe, as for the
membership and block rows. Nothing is deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from chat_events.events.types import ChatMessage
from chat_events.store import cassandra_rows as rows
from chat_events.store.cassandra_async import Row
from chat_events.store.cassandra_driver import CqlSession
from chat_events.store.cassandra_plan import Write, buckets_up
from chat_events.store.models import Page
from chat_events.store.progress import DeviceKey, DeviceProgress, advanced

_PROGRESS_COLS = "user_id, device_id, acked_seq, acked_at_ms"

SYNC_STATEMENTS: dict[str, str] = {
    "progress_in": f"SELECT {_PROGRESS_COLS} FROM device_progress WHERE user_id IN ? AND device_id IN ?",
    "progress_set": f"INSERT INTO device_progress ({_PROGRESS_COLS}) VALUES (?, ?, ?, ?)",
}
"""The statements of this mixin, prepared with the store's (``rows.STATEMENTS``)."""


class SyncTables:
    """The sync half of the port on the tables of ``schemas/cassandra.cql``."""

    _db: CqlSession

    if TYPE_CHECKING:  # CassandraStore's

        async def max_conversation_seqs(self, conversation_ids: Iterable[str]) -> dict[str, int]: ...

    async def conversation_range(
        self, conversation_id: str, from_seq: int, to_seq: int, limit: int = 50
    ) -> Page[ChatMessage]:
        """See the port. Walks the buckets of ``from_seq..min(to_seq, committed max)`` upwards
        with ``LIMIT limit + 1`` (the extra row says whether the range goes on), so a row whose
        commit has not landed is not shown (as in ``conversation_messages``)."""
        want = max(limit, 0) + 1
        top = (await self.max_conversation_seqs([conversation_id]))[conversation_id]
        high = min(to_seq, top)
        found: list[Row] = []
        for b in buckets_up(from_seq, high):
            found += await self._db.rows("msg_after", conversation_id, b, from_seq - 1, high, want - len(found))
            if len(found) >= want:
                break
        items = tuple(rows.message_from_row(r) for r in found[: want - 1])
        return Page(items, has_more=len(found) >= want)

    async def advance_device_progress(self, progress: Sequence[DeviceProgress]) -> None:
        """See the port: one read of the devices' rows, then only the raised rows written (one
        UNLOGGED batch per packed group; each row is its own unit)."""
        if not progress:
            return
        stored = await self.device_progress(p.key for p in progress)
        units: list[list[Write]] = [
            [("progress_set", (p.user_id, p.device_id, p.acked_seq, p.acked_at_ms))] for p in advanced(stored, progress)
        ]
        if units:
            await self._db.write_all(units)

    async def device_progress(self, keys: Iterable[DeviceKey]) -> dict[DeviceKey, DeviceProgress]:
        wanted = set(keys)
        if not wanted:
            return {}
        found = await self._db.lookup_pairs("progress_in", wanted)
        out: dict[DeviceKey, DeviceProgress] = {}
        for r in found:
            key = (r["user_id"], r["device_id"])
            if key in wanted:  # the cover may return pairs nobody asked for
                out[key] = DeviceProgress(
                    user_id=key[0], device_id=key[1], acked_seq=r["acked_seq"], acked_at_ms=r["acked_at_ms"] or 0
                )
        return out
