"""The Cassandra adapter of the store port (tables: ``schemas/cassandra.cql``).

Built from :class:`Settings` by :func:`chat_events.store.factory.open_store`; it connects in
``open()`` and prepares every statement once there. Requests go out with ``execute_async`` and
are awaited without blocking the event loop (``cassandra_async.py``).

Consistency without lightweight transactions: the port promises one writer per key (the
worker owning the Kafka partition), so read-then-write is safe and no ``IF NOT EXISTS`` / LWT
round trips are paid. Two writers racing on one conversation could both pass the seq checks;
guarding against that would need LWT on ``messages_by_id`` (Paxos, ~4 round trips a write),
which the consumer group's one-owner-per-partition makes unnecessary.

Requests, not rows, are what the worker pays for: the Python driver costs the worker ~170-280 us
of CPU per request (``benchmarks/bench_cql.py``) against ~7-18 us per key inside an ``IN ?`` read
or an UNLOGGED batch. So every lookup of a batch is one request per 100 keys (``IN ?``; a two-column
key by a cartesian cover of its pairs, ``cassandra_plan.cover``), rows are written in UNLOGGED
batches packed under the size limit, and the reads a save would repeat are skipped when the
single writer passes what it has just read (``WriterReads``).

Commit of ``save_messages``, in two steps: the ``messages`` rows with their ``messages_by_id``
and ``messages_by_client_id`` rows first (UNLOGGED batches), then ``conversation_seqs`` raised
per conversation (one row each). ``conversation_seqs`` is therefore the messages' commit marker:
a lookup row or a message row above its conversation's maximum is left over from a save whose
commit was lost, and every reader ignores it (found by no id, holds no seq, shown in no page).
No LOGGED batch, hence no batchlog, on the write path.

Commit of ``save_inbox``, in two steps: the entry rows (three per entry) first, in UNLOGGED
batches; then, per user, the conversation rows and the raised ``user_seqs`` in one unit. That
unit's statements all have the partition key ``user_id`` (``conversations_by_user`` and
``user_seqs``), so Cassandra applies them as one mutation: all or nothing, without the batchlog
of a multi-partition LOGGED batch. ``user_seqs`` is therefore the inbox's commit marker: an entry
above the user's committed maximum is left over from a save whose commit was lost, and every
reader ignores it (it holds no seq, is not found, is not counted unread), so the inbox and the
unread counts agree after a crash.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from cassandra.query import UNSET_VALUE

from chat_events.events.types import ChatMessage
from chat_events.settings import Settings
from chat_events.store import cassandra_rows as rows
from chat_events.store.cassandra_async import Row
from chat_events.store.cassandra_changes import CHANGES_STATEMENTS, ChangeTables
from chat_events.store.cassandra_driver import CqlSession
from chat_events.store.cassandra_groups import GROUP_STATEMENTS, GroupTables
from chat_events.store.cassandra_plan import (
    BUCKET_SIZE,
    StoredMessages,
    Write,
    bucket,
    buckets_down,
    buckets_up,
    conversation_commits,
    merge_conversation,
    message_writes,
    new_inbox_entries,
    new_messages,
)
from chat_events.store.cassandra_presence import PRESENCE_STATEMENTS, PresenceTables
from chat_events.store.cassandra_rows import SESSION_TTL_S
from chat_events.store.cassandra_settings import SETTINGS_STATEMENTS, SettingsTables
from chat_events.store.cassandra_social import SocialTables
from chat_events.store.cassandra_sync import SYNC_STATEMENTS, SyncTables
from chat_events.store.models import ConversationState, InboxEntry, Page, WriterReads
from chat_events.store.port import MessageStore

__all__ = ["BUCKET_SIZE", "SESSION_TTL_S", "CassandraStore", "bucket"]


class CassandraStore(ChangeTables, SocialTables, SyncTables, SettingsTables, PresenceTables, GroupTables, MessageStore):
    """:class:`MessageStore` on Apache Cassandra (or any CQL-compatible cluster). Groups,
    blocks, sessions and rate limits come from :class:`SocialTables`; seq ranges and device
    progress from :class:`SyncTables`."""

    def __init__(self, settings: Settings) -> None:
        statements = {
            **rows.STATEMENTS,
            **SYNC_STATEMENTS,
            **SETTINGS_STATEMENTS,
            **CHANGES_STATEMENTS,
            **PRESENCE_STATEMENTS,
        }
        statements |= GROUP_STATEMENTS
        self._db = CqlSession(settings, statements)
        self._edges_registered = {}

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    # --- messages -------------------------------------------------------------------------

    async def find_messages(self, message_ids: Iterable[str]) -> dict[str, ChatMessage]:
        return {mid: rows.message_from_row(row) for mid, row in (await self._message_rows(message_ids)).items()}

    async def message_origins(self, message_ids: Iterable[str]) -> dict[str, str]:
        found = await self._message_rows(message_ids)
        return {mid: origin for mid, row in found.items() if (origin := rows.origin_from_row(row)) is not None}

    async def _message_rows(self, message_ids: Iterable[str]) -> dict[str, Row]:
        """The committed ``messages`` rows of ``message_ids``: found through ``messages_by_id``
        (the commit marker), then read at their place."""
        refs = await self._by_id(message_ids)
        places: dict[tuple[str, int], list[int]] = {}
        for conversation_id, seq in refs.values():
            places.setdefault((conversation_id, bucket(seq)), []).append(seq)
        at = {(r["conversation_id"], r["seq"]): r for r in await self._db.lookup("msg_in", places)}
        out: dict[str, Row] = {}
        for message_id, place in refs.items():
            found = at.get(place)
            if found is not None and found["message_id"] == message_id:
                out[message_id] = found
        return out

    async def _by_id(self, message_ids: Iterable[str]) -> dict[str, tuple[str, int]]:
        """``messages_by_id``: message id -> (conversation id, seq), for the ids stored and
        committed (at or below their conversation's maximum; module docstring)."""
        found = await self._db.lookup("by_id_in", {(): message_ids})
        committed = await self._committed(found)
        return {r["message_id"]: (r["conversation_id"], r["seq"]) for r in committed}

    async def _by_client(self, keys: Iterable[tuple[str, str | None]]) -> dict[tuple[str, str], str]:
        """``messages_by_client_id``: (sender, client_msg_id) -> message id, for those stored
        and committed."""
        wanted = {(sender_id, client_msg_id) for sender_id, client_msg_id in keys if client_msg_id}
        found = await self._db.lookup_pairs("by_client_in", wanted)
        committed = await self._committed([r for r in found if (r["sender_id"], r["client_msg_id"]) in wanted])
        return {(r["sender_id"], r["client_msg_id"]): r["message_id"] for r in committed}

    async def _committed(self, refs: Sequence[Row]) -> list[Row]:
        """The lookup rows among ``refs`` (``conversation_id``, ``seq``) whose seq is committed:
        at or below the conversation's maximum. A row above it is left over from a save whose
        commit was lost: the message is not stored."""
        if not refs:
            return []
        tops = await self.max_conversation_seqs(r["conversation_id"] for r in refs)
        return [r for r in refs if r["seq"] <= tops.get(r["conversation_id"], 0)]

    async def find_client_messages(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], ChatMessage]:
        refs = await self._by_client(keys)
        found = await self.find_messages(refs.values())
        return {key: found[mid] for key, mid in refs.items() if mid in found}

    async def max_conversation_seqs(self, conversation_ids: Iterable[str]) -> dict[str, int]:
        return await self._maxima("conv_seq_in", "conversation_id", conversation_ids)

    async def _maxima(self, statement: str, key_column: str, ids: Iterable[str]) -> dict[str, int]:
        """``max_seq`` per id from ``conversation_seqs`` / ``user_seqs`` (0 when absent)."""
        keys = list(dict.fromkeys(ids))
        found = {r[key_column]: r["max_seq"] or 0 for r in await self._db.lookup(statement, {(): keys})}
        return {key: found.get(key, 0) for key in keys}

    async def save_messages(
        self,
        messages: Sequence[ChatMessage],
        origins: Mapping[str, str] | None = None,
        *,
        checked: WriterReads | None = None,
    ) -> None:
        """See the port. The seq checks read ``messages_by_id``, the ``messages`` rows at the
        given seqs and ``messages_by_client_id`` first (one writer per conversation makes that
        safe without LWT), then new rows are written and committed (module docstring).

        The origin is a column of the ``messages`` row, written by the same ``msg_insert``. A
        committed message is never written again, so its origin is never replaced. The only row
        written twice is one whose commit batch was lost (a crash between the two writes): the
        save that commits it writes it again with its own origin, which is right, the origin
        being the input whose save stored the message. And it is the same input: the row's
        place (conversation, seq) belongs to one partition, handled by one worker at a time in
        order, and the record that wrote the row failed its batch, so that record is handled
        again before any later record of the partition."""
        if not messages:
            return
        origin_of = origins or {}
        if checked is not None:  # the single writer has just read all of this (port)
            by_id: dict[str, tuple[str, int]] = {}
            by_client: dict[tuple[str, str], str] = {}
            max_seqs = {m.conversation_id: checked.max_seqs.get(m.conversation_id, 0) for m in messages}
        else:
            by_id, by_client, max_seqs = await asyncio.gather(
                self._by_id(m.message_id for m in messages),
                self._by_client((m.sender_id, m.client_msg_id) for m in messages),
                self.max_conversation_seqs(m.conversation_id for m in messages),
            )
        stored = StoredMessages(
            by_id=by_id,
            at_seq=await self._taken(
                "msg_at_seqs", ("conversation_id", "seq"), {(m.conversation_id, m.seq) for m in messages}, max_seqs
            ),
            by_client=by_client,
            max_seqs=max_seqs,
        )
        new = new_messages(messages, stored)
        if not new:
            return
        row = lambda m: ("msg_insert", rows.message_values(m, origin_of.get(m.message_id)))  # noqa: E731
        await self._db.write_all(message_writes(new, row))  # step one: invisible until committed
        await self._db.write_all(conversation_commits(new, max_seqs))  # step two: the commit

    async def _taken(
        self,
        statement: str,
        columns: tuple[str, str],
        places: Iterable[tuple[str, int]],
        committed: Mapping[str, int],
    ) -> dict[tuple[str, int], str]:
        """Which message holds each committed place ``(key, seq)`` among ``places``: the rows at
        the places with ``seq`` at or below the key's committed maximum. A place above it holds
        at most a left-over of a save whose commit was lost, which takes no seq, so it is not
        read at all: a new message or entry, placed above the maximum, costs no read here.
        ``columns``: the key and seq columns of the rows ``statement`` returns."""
        wanted: dict[tuple[str, int], list[int]] = {}
        for key, seq in places:
            if seq <= committed.get(key, 0):
                wanted.setdefault((key, bucket(seq)), []).append(seq)
        if not wanted:
            return {}
        key_column, seq_column = columns
        found = await self._db.lookup(statement, wanted)
        return {(r[key_column], r[seq_column]): r["message_id"] for r in found}

    async def get_message(self, message_id: str) -> ChatMessage | None:
        return (await self.find_messages([message_id])).get(message_id)

    async def conversation_messages(
        self, conversation_id: str, *, after_seq: int | None = None, before_seq: int | None = None, limit: int = 50
    ) -> Page[ChatMessage]:
        """See the port. Walks the conversation's buckets from the bound outwards with
        ``LIMIT limit + 1`` (the extra row says whether more follow), never past the committed
        maximum, so a row whose commit batch has not landed is not shown."""
        if (after_seq is None) == (before_seq is None):
            raise ValueError("give exactly one of after_seq / before_seq")
        want = max(limit, 0) + 1
        top = (await self.max_conversation_seqs([conversation_id]))[conversation_id]
        found: list[Row] = []
        if after_seq is not None:
            for b in buckets_up(after_seq + 1, top):
                found += await self._db.rows("msg_after", conversation_id, b, after_seq, top, want - len(found))
                if len(found) >= want:
                    break
        elif before_seq is not None:
            bound = min(before_seq, top + 1)
            for b in buckets_down(bound - 1):
                found += await self._db.rows("msg_before", conversation_id, b, bound, want - len(found))
                if len(found) >= want:
                    break
        items = tuple(rows.message_from_row(r) for r in found[: max(limit, 0)])
        return Page(items, has_more=len(found) > max(limit, 0))

    async def set_message_status(self, message_id: str, status: str) -> ChatMessage | None:
        message = await self.get_message(message_id)
        if message is None:
            return None
        await self._db.rows("msg_set_status", status, message.conversation_id, bucket(message.seq), message.seq)
        return replace(message, status=status)

    # --- inbox ----------------------------------------------------------------------------

    async def find_inbox_entries(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], InboxEntry]:
        """See the port. Only committed entries (at or below the user's ``user_seqs``, module
        docstring): a left-over row must not pass for stored, or its replay would be skipped."""
        wanted = list(dict.fromkeys(keys))
        found, tops = await asyncio.gather(self._inbox_by_message(wanted), self.max_user_seqs(u for u, _ in wanted))
        return _committed_entries(found, tops)

    async def _inbox_by_message(self, keys: Iterable[tuple[str, str]]) -> list[InboxEntry]:
        """``inbox_by_message`` rows of ``(user, message)`` keys, committed or not."""
        wanted = set(keys)
        found = map(rows.inbox_from_row, await self._db.lookup_pairs("inbox_by_msg_in", wanted))
        return [e for e in found if (e.user_id, e.message_id) in wanted]

    async def max_user_seqs(self, user_ids: Iterable[str]) -> dict[str, int]:
        return await self._maxima("user_seq_in", "user_id", user_ids)

    async def get_conversations(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], ConversationState]:
        wanted = set(keys)
        found = map(rows.conversation_from_row, await self._db.lookup_pairs("conv_in", wanted))
        return {key: c for c in found if (key := (c.user_id, c.conversation_id)) in wanted}

    async def save_inbox(
        self,
        entries: Sequence[InboxEntry],
        conversations: Sequence[ConversationState],
        *,
        checked: WriterReads | None = None,
    ) -> None:
        """See the port. Two steps (module docstring): every entry row (three tables), then per
        user one single-key mutation with the conversation rows and the raised ``user_seqs``,
        which commits that user's entries, so a user's unread counts and inbox cannot disagree
        after a crash. Atomic per user, not across the users of one call."""
        if not entries and not conversations:
            return
        if checked is not None:  # the single writer has just read all of this (port)
            by_message: dict[tuple[str, str], InboxEntry] = {}
            stored = dict(checked.conversations)
            max_seqs = {e.user_id: checked.max_seqs.get(e.user_id, 0) for e in entries}
        else:
            found, stored, max_seqs = await asyncio.gather(
                self._inbox_by_message((e.user_id, e.message_id) for e in entries),
                self.get_conversations((c.user_id, c.conversation_id) for c in conversations),
                self.max_user_seqs(e.user_id for e in entries),
            )
            by_message = _committed_entries(found, max_seqs)
        at_seq = await self._taken(
            "inbox_at_seqs", ("user_id", "user_seq"), {(e.user_id, e.user_seq) for e in entries}, max_seqs
        )
        new = new_inbox_entries(entries, {key: e.user_seq for key, e in by_message.items()}, at_seq)
        units: dict[str, list[Write]] = {}  # per user: what commits the user's new entries
        final: dict[tuple[str, str], ConversationState] = {}
        for c in conversations:  # one write per row: a batch gives every statement one timestamp
            key = (c.user_id, c.conversation_id)
            final[key] = merge_conversation(final.get(key, stored.get(key)), c) or c
        for key, c in final.items():
            write = rows.conversation_insert(c) if key not in stored else rows.conversation_activity(c)
            units.setdefault(c.user_id, []).append(write)
        tops: dict[str, int] = {}
        for e in new:
            tops[e.user_id] = max(tops.get(e.user_id, 0), e.user_seq)
        for user, top in tops.items():
            if top > max_seqs.get(user, 0):
                units.setdefault(user, []).append(("user_seq_set", (user, top)))
        # step one: the entry rows, invisible until committed; step two: per user, one mutation
        await self._db.write_all([write] for e in new for write in rows.inbox_writes(e))
        await self._db.write_all(units.values())

    async def inbox_after(self, user_id: str, after_seq: int, limit: int = 100) -> Page[InboxEntry]:
        want = max(limit, 0) + 1
        top = (await self.max_user_seqs([user_id]))[user_id]
        found: list[Row] = []
        for b in buckets_up(after_seq + 1, top):
            found += await self._db.rows("inbox_after", user_id, b, after_seq, want - len(found))
            if len(found) >= want:
                break
        found = [r for r in found if r["user_seq"] <= top]  # never a left-over above the commit (docstring)
        items = tuple(rows.inbox_from_row(r) for r in found[: max(limit, 0)])
        return Page(items, has_more=len(found) > max(limit, 0))

    async def list_conversations(self, user_id: str, limit: int = 50) -> list[ConversationState]:
        """See the port: the user's partition is read whole and sorted here (last activity
        first, then conversation id), since activity cannot be a clustering column."""
        found = [rows.conversation_from_row(r) for r in await self._db.rows("conv_list", user_id)]
        found.sort(key=lambda c: (-c.last_activity_ms, c.conversation_id))
        return found[: max(limit, 0)]

    async def mark_read(
        self, user_id: str, conversation_id: str, seq: int, *, version: int | None = None
    ) -> ConversationState | None:
        """See the port. The recount reads ``inbox_by_conversation`` after the new read position
        (the entries still unread plus the user's own), so it costs O(unread)."""
        row = (await self.get_conversations([(user_id, conversation_id)])).get((user_id, conversation_id))
        if row is None:
            return None
        read_seq = max(row.read_seq, seq)
        after, tops = await asyncio.gather(
            self._db.rows("inbox_by_conv_after", user_id, conversation_id, read_seq), self.max_user_seqs([user_id])
        )
        top = tops[user_id]  # left-over entries above the committed maximum are not in the inbox
        counted = [  # a change entry or system message (counted false) is never unread; absent: counted
            r for r in after if r["sender_id"] != user_id and r["user_seq"] <= top and r.get("counted") is not False
        ]
        unread, mentions = len(counted), sum(1 for r in counted if r.get("mentioned"))
        new_version = row.version if version is None else max(row.version, version)
        await self._db.rows("conv_read", read_seq, unread, new_version, mentions, user_id, conversation_id)
        return replace(row, read_seq=read_seq, unread=unread, version=new_version, unread_mentions=mentions)

    async def set_conversation_flags(
        self,
        user_id: str,
        conversation_id: str,
        *,
        pinned: bool | None = None,
        muted: bool | None = None,
        hidden: bool | None = None,
        version: int | None = None,
    ) -> ConversationState | None:
        """See the port. Read, then an update of the given columns: the caller is the row's
        single writer (the owner of the user's partition), so nothing changes it in between."""
        row = (await self.get_conversations([(user_id, conversation_id)])).get((user_id, conversation_id))
        if row is None or (pinned is None and muted is None and hidden is None and version is None):
            return row
        new = replace(
            row,
            pinned=row.pinned if pinned is None else pinned,
            muted=row.muted if muted is None else muted,
            hidden=row.hidden if hidden is None else hidden,
            version=row.version if version is None else max(row.version, version),
        )
        values = (*(UNSET_VALUE if v is None else v for v in (pinned, muted, hidden)), new.version)
        await self._db.rows("conv_flags", *values, user_id, conversation_id)
        return new


def _committed_entries(found: Iterable[InboxEntry], tops: Mapping[str, int]) -> dict[tuple[str, str], InboxEntry]:
    """The entries among ``found`` at or below their user's committed maximum (module docstring)."""
    return {(e.user_id, e.message_id): e for e in found if e.user_seq <= tops.get(e.user_id, 0)}
