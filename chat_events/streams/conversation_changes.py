"""The inbox stage's part for the conversation-list events: a user's ``conversationRead``,
``conversationFlagsSet`` and ``allConversationsRead``, on ``chat.inbox`` keyed by that user.

The inbox stage owns the user's partition of ``chat.inbox``, so it is the single writer of the
user's conversation rows (the inbox writes change them too): these events are applied there, in
their order among the user's messages. Each change of a row gets a new version
(:func:`~chat_events.streams.conversation_logic.next_version`) and is pushed as a
``conversationChanged`` to every edge holding a session of the user, so all the user's devices
learn it; a read also sends a ``readReceiptDispatched`` to the edges of the other members
(:func:`~chat_events.streams.conversation_logic.receipt_recipients`).

Idempotent: a replayed or older read, and flags as they already are, change nothing (decided
against the stored row, which this stage alone writes); the row as it is is pushed again, so a
push lost to a crash after the store write is sent by the replay (clients keep the highest
version). Read receipts are not sent again. A replayed remove or "mark everything read" is
bounded by the user's inbox seq when the edge accepted it (``up_to_user_seq``): messages that
arrived after it stay shown and unread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence

from chat_events.events.conversation_events import (
    AllConversationsRead,
    ConversationChanged,
    ConversationFlagsSet,
    ConversationRead,
    ReadReceiptDispatched,
    ReadReceiptsSet,
)
from chat_events.events.conversations import DIRECT_PREFIX
from chat_events.events.factory import new_envelope
from chat_events.store.models import ConversationState, InboxEntry, Session
from chat_events.store.port import MessageStore
from chat_events.streams.conversation_logic import (
    flags_after,
    next_version,
    read_all_targets,
    read_changes,
    receipt_recipients,
)
from chat_events.streams.records import Incoming, Output, output_envelope_id

CONVERSATION_EVENTS = frozenset(
    {
        ConversationRead.EVENT_NAME,
        ConversationFlagsSet.EVENT_NAME,
        AllConversationsRead.EVENT_NAME,
        ReadReceiptsSet.EVENT_NAME,
    }
)
READ_ALL_MAX_ROWS = 100_000
""""Mark everything read" looks at this many of the user's conversations (and later entries) at most."""
READ_ALL_CONCURRENCY = 32
"""Rows "mark everything read" recounts at once."""


class ConversationChanges:
    """Applies one user's conversation-list event at a time (see the module docstring)."""

    def __init__(
        self, store: MessageStore, *, stage: str, edge_topic: Callable[[str], str], receipts_max_group: int
    ) -> None:
        self._store = store
        self._stage = stage
        self._edge_topic = edge_topic
        self._receipts_max_group = receipts_max_group
        self._versions: dict[str, int] = {}
        """The last version given to each user's rows by this worker (forgotten on reassignment)."""

    def reset(self) -> None:
        self._versions.clear()

    def version_for(self, user_id: str, row_versions: Iterable[int]) -> int:
        """A new version for a change of ``user_id``'s rows (above the rows' own versions)."""
        version = next_version(time.time_ns() // 1000, max(self._versions.get(user_id, 0), *row_versions, 0))
        self._versions[user_id] = version
        return version

    async def apply(self, item: Incoming) -> list[Output]:
        user_id, event = item.envelope.user_id, item.envelope.payload
        assert user_id is not None  # validated: these events require userId
        if isinstance(event, ConversationRead):
            return await self._read(item, user_id, event)
        if isinstance(event, ConversationFlagsSet):
            return await self._flags(item, user_id, event)
        if isinstance(event, ReadReceiptsSet):  # a setting: nothing to push
            await self._store.set_read_receipts(user_id, event.enabled, at_ms=event.set_at_ms)
            return []
        assert isinstance(event, AllConversationsRead)
        return await self._read_all(item, user_id, event.up_to_user_seq)

    async def _read(self, item: Incoming, user_id: str, event: ConversationRead) -> list[Output]:
        key = (user_id, event.conversation_id)
        row = (await self._store.get_conversations([key])).get(key)
        if row is None:
            return []
        if not read_changes(row, event.read_seq):  # a replay or an older read: the row as it is
            return self._changed(item, [row], (await self._store.sessions_of([user_id])).get(user_id, ()))
        members = None
        if not event.conversation_id.startswith(DIRECT_PREFIX):
            members = (await self._store.group_members([event.conversation_id]))[event.conversation_id]
        others = receipt_recipients(event.conversation_id, user_id, members, max_group=self._receipts_max_group)
        if others and not (await self._store.read_receipts_enabled([user_id]))[user_id]:
            others = []  # the user turned read receipts off: only their own devices learn it
        version = self.version_for(user_id, [row.version])
        changed, sessions = await asyncio.gather(
            self._store.mark_read(user_id, event.conversation_id, event.read_seq, version=version),
            self._store.sessions_of([user_id, *others]),
        )
        if changed is None:
            return []
        outputs = self._changed(item, [changed], sessions.get(user_id, ()))
        outputs += self._receipts(item, user_id, changed, {u: sessions.get(u, ()) for u in others})
        return outputs

    async def _flags(self, item: Incoming, user_id: str, event: ConversationFlagsSet) -> list[Output]:
        key = (user_id, event.conversation_id)
        row = (await self._store.get_conversations([key])).get(key)
        if row is None:
            return []
        new = flags_after(row, event)
        if new is None:  # as they are (a replay): the row as it is
            return self._changed(item, [row], (await self._store.sessions_of([user_id])).get(user_id, ()))
        changed, sessions = await asyncio.gather(
            self._store.set_conversation_flags(
                user_id,
                event.conversation_id,
                pinned=event.pinned,
                muted=event.muted,
                hidden=event.hidden,
                version=self.version_for(user_id, [new.version]),
            ),
            self._store.sessions_of([user_id]),
        )
        return self._changed(item, [changed] if changed else [], sessions.get(user_id, ()))

    async def _read_all(self, item: Incoming, user_id: str, up_to_user_seq: int) -> list[Output]:
        rows, later = await asyncio.gather(
            self._store.list_conversations(user_id, READ_ALL_MAX_ROWS), self._later_entries(user_id, up_to_user_seq)
        )
        targets = read_all_targets(rows, up_to_user_seq, later)
        changed: list[ConversationState] = []
        for start in range(0, len(targets), READ_ALL_CONCURRENCY):  # independent rows: a few at once
            chunk = targets[start : start + READ_ALL_CONCURRENCY]
            reads = await asyncio.gather(
                *(
                    self._store.mark_read(
                        user_id, row.conversation_id, seq, version=self.version_for(user_id, [row.version])
                    )
                    for row, seq in chunk
                )
            )
            changed += [read for read in reads if read is not None]
        if not changed:
            return []
        sessions = await self._store.sessions_of([user_id])
        return self._changed(item, changed, sessions.get(user_id, ()))

    async def _later_entries(self, user_id: str, after: int) -> list[InboxEntry]:
        """The user's inbox entries after seq ``after`` (at most :data:`READ_ALL_MAX_ROWS`)."""
        found: list[InboxEntry] = []
        while len(found) < READ_ALL_MAX_ROWS:
            page = await self._store.inbox_after(user_id, after, 500)
            found += page.items
            if not page.has_more or not page.items:
                break
            after = page.items[-1].user_seq
        return found

    def _changed(self, item: Incoming, rows: Sequence[ConversationState], sessions: Sequence[Session]) -> list[Output]:
        """A ``conversationChanged`` per changed row to every edge holding a session of its user."""
        outputs = []
        for edge_id in sorted({s.edge_id for s in sessions}):
            for row in rows:
                event = ConversationChanged(
                    recipient_id=row.user_id,
                    edge_id=edge_id,
                    conversation_id=row.conversation_id,
                    last_message_id=row.last_message_id,
                    last_seq=row.last_seq,
                    read_seq=row.read_seq,
                    unread=row.unread,
                    pinned=row.pinned,
                    muted=row.muted,
                    hidden=row.hidden,
                    last_activity_ms=row.last_activity_ms,
                    version=row.version,
                    unread_mentions=row.unread_mentions,
                )
                part = f"conv/{edge_id}/{row.conversation_id}"
                outputs.append(self._output(item, edge_id, row.user_id, event, part))
        return outputs

    def _receipts(
        self, item: Incoming, reader_id: str, row: ConversationState, sessions: dict[str, Sequence[Session]]
    ) -> list[Output]:
        """One ``readReceiptDispatched`` per edge holding sessions of the other members."""
        by_edge: dict[str, set[str]] = {}
        for user, user_sessions in sessions.items():
            for session in user_sessions:
                by_edge.setdefault(session.edge_id, set()).add(user)
        outputs = []
        for edge_id, users in sorted(by_edge.items()):
            recipients = tuple(sorted(users))
            event = ReadReceiptDispatched(
                recipient_ids=recipients,
                edge_id=edge_id,
                conversation_id=row.conversation_id,
                reader_id=reader_id,
                read_seq=row.read_seq,
            )
            outputs.append(self._output(item, edge_id, recipients[0], event, f"receipt/{edge_id}"))
        return outputs

    def _output(
        self,
        item: Incoming,
        edge_id: str,
        key_user: str,
        event: ConversationChanged | ReadReceiptDispatched,
        part: str,
    ) -> Output:
        envelope = new_envelope(
            event,
            user_id=key_user,
            trace_id=item.envelope.trace_id,
            span_context=item.envelope.span_context,
            envelope_id=output_envelope_id(item.envelope.id, self._stage, part),
        )
        return Output(self._edge_topic(edge_id), key_user.encode(), envelope)
