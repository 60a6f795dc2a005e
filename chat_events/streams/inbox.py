"""Inbox stage: ``chat.inbox`` (keyed by recipient) -> per-user seq, inbox entry, conversation
row -> a delivery to each edge holding one of the recipient's sessions (``chat.edge.<edge_id>``),
or an offline push (``chat.push``) when the recipient has none.

This worker owns the recipient's partition, so it alone assigns that user's seqs: dense,
strictly increasing, never reused. A replayed record finds its ``(user, message)`` entry and
reuses the seq; its delivery is sent again (the edge drops a seq it already delivered).
Sessions are read from the store for each batch (written by the sessions stage on the same
partition number of ``chat.user-events``), so they are never stale here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from chat_events.events.factory import new_envelope
from chat_events.events.types import ChatMessage, MessageDispatched, MessageFannedOut, OfflinePushRequested
from chat_events.store.models import ConversationState, InboxEntry
from chat_events.store.port import MessageStore
from chat_events.streams.inbox_logic import fold_conversation, preview_of, wants_push
from chat_events.streams.records import Incoming, Output, StageResult, output_envelope_id
from chat_events.streams.sequencing import SeqCounters


class InboxStage:
    name = "inbox"
    accepts = frozenset({MessageFannedOut.EVENT_NAME})

    def __init__(self, store: MessageStore, *, edge_topic: Callable[[str], str], push_topic: str) -> None:
        self._store = store
        self._edge_topic = edge_topic
        self._push_topic = push_topic
        self.counters = SeqCounters()

    def reset(self) -> None:
        self.counters.forget()

    async def handle(self, batch: Sequence[Incoming]) -> StageResult:
        items = [(item, _fanned_out(item)) for item in batch]
        keys = [(e.recipient_id, e.message.message_id) for _, e in items]
        entries = await self._store.find_inbox_entries(keys)
        fresh = [(item, e) for item, e in items if (e.recipient_id, e.message.message_id) not in entries]

        conversations: dict[tuple[str, str], ConversationState] = {}
        new_entries: list[InboxEntry] = []
        if fresh:
            users = {e.recipient_id for _, e in fresh}
            unknown = self.counters.unknown(users)
            if unknown:
                self.counters.seed(await self._store.max_user_seqs(unknown))
            conversations = await self._store.get_conversations(
                (e.recipient_id, e.message.conversation_id) for _, e in fresh
            )
            now_ms = int(time.time() * 1000)
            changed: set[tuple[str, str]] = set()
            for _, event in fresh:
                key = (event.recipient_id, event.message.message_id)
                if key in entries:  # the same message twice in one batch
                    continue
                entry = _entry(event, self.counters.allocate(event.recipient_id), now_ms)
                entries[key] = entry
                new_entries.append(entry)
                conv_key = (entry.user_id, entry.conversation_id)
                conversations[conv_key] = fold_conversation(conversations.get(conv_key), entry)
                changed.add(conv_key)
            await self._store.save_inbox(new_entries, [conversations[k] for k in sorted(changed)])
            self.counters.commit()

        sessions = await self._store.sessions_of({e.recipient_id for _, e in items})
        result = StageResult()
        for item, event in items:
            entry = entries[(event.recipient_id, event.message.message_id)]
            edges = sorted({s.edge_id for s in sessions.get(event.recipient_id, ())})
            for edge_id in edges:
                result.outputs.append(self._dispatch(item, event, entry.user_seq, edge_id))
            conversation = conversations.get((entry.user_id, entry.conversation_id))
            muted = conversation.muted if conversation else False
            if wants_push(
                recipient_id=event.recipient_id,
                sender_id=event.message.sender_id,
                online_sessions=len(edges),
                muted=muted,
            ):
                unread = conversation.unread if conversation else 1
                result.outputs.append(self._push(item, event, entry.user_seq, unread))
        return result

    def _dispatch(self, item: Incoming, event: MessageFannedOut, user_seq: int, edge_id: str) -> Output:
        envelope = new_envelope(
            MessageDispatched(
                recipient_id=event.recipient_id, user_seq=user_seq, edge_id=edge_id, message=event.message
            ),
            user_id=event.recipient_id,
            trace_id=item.envelope.trace_id,
            span_context=item.envelope.span_context,
            envelope_id=output_envelope_id(item.envelope.id, self.name, edge_id),
        )
        return Output(self._edge_topic(edge_id), event.recipient_id.encode(), envelope)

    def _push(self, item: Incoming, event: MessageFannedOut, user_seq: int, unread: int) -> Output:
        message = event.message
        push = OfflinePushRequested(
            recipient_id=event.recipient_id,
            user_seq=user_seq,
            message_id=message.message_id,
            conversation_id=message.conversation_id,
            sender_id=message.sender_id,
            message_type=message.message_type,
            preview=preview_of(message.message_type, message.payload),
            unread=unread,
        )
        envelope = new_envelope(
            push,
            user_id=event.recipient_id,
            trace_id=item.envelope.trace_id,
            envelope_id=output_envelope_id(item.envelope.id, self.name, "push"),
        )
        return Output(self._push_topic, event.recipient_id.encode(), envelope)


def _fanned_out(item: Incoming) -> MessageFannedOut:
    event = item.envelope.payload
    assert isinstance(event, MessageFannedOut)
    return event


def _entry(event: MessageFannedOut, user_seq: int, now_ms: int) -> InboxEntry:
    message: ChatMessage = event.message
    return InboxEntry(
        user_id=event.recipient_id,
        user_seq=user_seq,
        message_id=message.message_id,
        conversation_id=message.conversation_id,
        conversation_seq=message.seq,
        sender_id=message.sender_id,
        created_at_ms=now_ms,
    )
