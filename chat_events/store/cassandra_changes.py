"""Changes to sent messages in the Cassandra store (issue 16): edits, recalls and deletes as an
update of the ``messages`` row, reactions, and "delete for me" (a mixin of
:class:`~chat_events.store.cassandra.CassandraStore`; the ``reactions`` and ``hidden_messages``
tables are in ``schemas/cassandra.cql``).

``update_messages`` writes by the row's full key ``(conversation_id, bucket, seq)`` taken from
the message given, with no lookup. A Cassandra ``UPDATE`` is an upsert: given a message that is
not stored, it would create a partial row at that place (or overwrite another message's). So the
caller guarantees that every message it passes is stored, committed, at that seq: it is the
persist stage, the single writer of the conversation, which has just read the message from the
store to apply the change to it. (The embedded store ignores a message that is not stored.)

Reactions are last writer by ``at_ms`` wins, read-then-write like the other status rows
(:mod:`chat_events.store.cassandra_social`): the rows of the messages are read (``IN ?``), only
the writes that take effect are written (:func:`~chat_events.store.message_changes.reactions_to_write`),
in UNLOGGED batches; the one writer per conversation makes that safe. Nothing is deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from chat_events.events.types import ChatMessage
from chat_events.store.cassandra_driver import CqlSession
from chat_events.store.cassandra_plan import Write, bucket
from chat_events.store.message_changes import active_reactions, reaction_key, reactions_to_write
from chat_events.store.models import Reaction

_REACTION_COLS = "message_id, emoji, user_id, active, at_ms"

CHANGES_STATEMENTS: dict[str, str] = {
    "msg_update": "UPDATE messages SET payload = ?, mentions = ?, status = ?, edited_at_ms = ?, changed_seq = ? "
    "WHERE conversation_id = ? AND bucket = ? AND seq = ?",
    "reactions_in": f"SELECT {_REACTION_COLS} FROM reactions WHERE message_id IN ?",
    "reaction_set": f"INSERT INTO reactions ({_REACTION_COLS}) VALUES (?, ?, ?, ?, ?)",
    "hidden_in": "SELECT message_id FROM hidden_messages WHERE user_id = ? AND message_id IN ?",
    "hidden_set": "INSERT INTO hidden_messages (user_id, message_id, at_ms) VALUES (?, ?, ?)",
}
"""The statements of this mixin, prepared with the store's (``rows.STATEMENTS``)."""


def message_update(m: ChatMessage) -> Write:
    """The ``msg_update`` of one message: its changeable state, by its full row key."""
    values = (m.payload, list(m.mentions), m.status, m.edited_at_ms, m.changed_seq)
    return ("msg_update", (*values, m.conversation_id, bucket(m.seq), m.seq))


class ChangeTables:
    """The changes half of the port on the tables of ``schemas/cassandra.cql``."""

    _db: CqlSession

    async def update_messages(self, messages: Sequence[ChatMessage]) -> None:
        """See the port, and the module docstring: every message given must be stored (the
        caller, the persist stage, has just read it). One ``UPDATE`` per message, packed into
        UNLOGGED batches; the same state written twice is the same row."""
        if messages:
            await self._db.write_all([message_update(m)] for m in messages)

    async def save_reactions(self, reactions: Sequence[Reaction]) -> None:
        """See the port: the messages' stored reactions are read, then only the writes that
        take effect (a stored newer ``at_ms`` wins) are written, one row each."""
        if not reactions:
            return
        stored = await self._reaction_rows(r.message_id for r in reactions)
        new = reactions_to_write({reaction_key(r): r.at_ms for r in stored}, reactions)
        if new:
            await self._db.write_all(
                [("reaction_set", (r.message_id, r.emoji, r.user_id, r.active, r.at_ms))] for r in new
            )

    async def reactions_of(self, message_ids: Iterable[str]) -> dict[str, dict[str, tuple[str, ...]]]:
        return active_reactions(await self._reaction_rows(message_ids))

    async def _reaction_rows(self, message_ids: Iterable[str]) -> list[Reaction]:
        found = await self._db.lookup("reactions_in", {(): message_ids})
        return [
            Reaction(
                message_id=r["message_id"],
                user_id=r["user_id"],
                emoji=r["emoji"],
                active=bool(r["active"]),
                at_ms=r["at_ms"] or 0,
            )
            for r in found
        ]

    async def hide_messages(self, user_id: str, message_ids: Iterable[str], *, at_ms: int) -> None:
        """See the port: only the messages not hidden yet get a row (hiding again keeps the
        first row and its time, as in the embedded store)."""
        ids = list(dict.fromkeys(message_ids))
        if not ids:
            return
        hidden = await self.hidden_messages(user_id, ids)
        new = [mid for mid in ids if mid not in hidden]
        if new:
            await self._db.write_all([("hidden_set", (user_id, mid, at_ms))] for mid in new)

    async def hidden_messages(self, user_id: str, message_ids: Iterable[str]) -> frozenset[str]:
        ids = list(dict.fromkeys(message_ids))
        if not ids:
            return frozenset()
        found = await self._db.lookup("hidden_in", {(user_id,): ids})
        return frozenset(r["message_id"] for r in found)
