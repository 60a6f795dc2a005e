"""Inbox stage: ``chat.inbox`` (keyed by recipient) -> per-user seq, inbox entry, conversation
row -> a delivery to each edge holding one of the recipient's sessions (``chat.edge.<edge_id>``),
or an offline push (``chat.push``) when the recipient has none.

A ``messageFannedOutBatch`` record stands for one ``messageFannedOut`` per listed recipient (all
on this partition). Deliveries of one message to one edge are grouped by the recipients' partition
of the edge topic: one ``messageDispatched`` per partition with a single recipient, one
``messageDispatchedBatch`` (explicit partition) where several share it, so every recipient's
deliveries stay on one partition, in seq order.

This worker owns the recipient's partition, so it alone assigns that user's seqs: dense,
strictly increasing, never reused. A replayed record finds its ``(user, message)`` entry and
reuses the seq; its delivery is sent again (the edge drops a seq it already delivered).
Sessions are read from the store for each batch (written by the sessions stage on the same
partition number of ``chat.user-events``), so they are never stale here.

The user's own conversation-list events (``conversationRead``, ``conversationFlagsSet``,
``allConversationsRead``) share the user's partition and are applied here too, by
:class:`~chat_events.streams.conversation_changes.ConversationChanges`, in batch order with the
messages: a batch is handled as runs of messages and single conversation events.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chat_events.events.factory import new_envelope
from chat_events.events.types import (
    ChatMessage,
    MessageDispatched,
    MessageDispatchedBatch,
    MessageFannedOut,
    MessageFannedOutBatch,
    OfflinePushRequested,
)
from chat_events.producers.partitioner import partition_for
from chat_events.store.models import InboxEntry, WriterReads
from chat_events.store.port import MessageStore
from chat_events.streams.conversation_changes import CONVERSATION_EVENTS, ConversationChanges
from chat_events.streams.inbox_logic import fold_conversation, preview_of, wants_push
from chat_events.streams.records import Incoming, Output, StageResult, no_maxima, output_envelope_id
from chat_events.streams.sequencing import SeqCounters


@dataclass(frozen=True, slots=True)
class _Fanned:
    """One (recipient, message) of a ``messageFannedOut`` or of a ``messageFannedOutBatch``."""

    recipient_id: str
    message: ChatMessage


class InboxStage:
    name = "inbox"
    accepts = frozenset({MessageFannedOut.EVENT_NAME, MessageFannedOutBatch.EVENT_NAME}) | CONVERSATION_EVENTS

    def __init__(
        self,
        store: MessageStore,
        *,
        edge_topic: Callable[[str], str],
        push_topic: str,
        edge_partitions: int,
        receipts_max_group: int = 100,
    ) -> None:
        self._store = store
        self._edge_topic = edge_topic
        self._push_topic = push_topic
        self._edge_partitions = edge_partitions
        self.counters = SeqCounters()
        self.conversations = ConversationChanges(
            store, stage=self.name, edge_topic=edge_topic, receipts_max_group=receipts_max_group
        )

    def reset(self) -> None:
        self.counters.forget()
        self.conversations.reset()

    async def handle(self, batch: Sequence[Incoming]) -> StageResult:
        """Runs of messages together, each conversation-list event on its own, in batch order."""
        result = StageResult()
        run: list[Incoming] = []
        for item in batch:
            if item.envelope.name not in CONVERSATION_EVENTS:
                run.append(item)
                continue
            if run:
                result.extend(await self._handle_messages(run))
                run = []
            result.outputs.extend(await self.conversations.apply(item))
        if run:
            result.extend(await self._handle_messages(run))
        return result

    async def _handle_messages(self, batch: Sequence[Incoming]) -> StageResult:
        items = [(item, fanned) for item in batch for fanned in _fanned_out(item)]
        keys = [(e.recipient_id, e.message.message_id) for _, e in items]
        users = {e.recipient_id for _, e in items}
        unknown = self.counters.unknown(users)
        # independent reads, one round trip: the entries (replays), the conversation rows, the
        # maxima of users seen for the first time, the sessions to deliver to
        entries, conversations, maxima, sessions = await asyncio.gather(
            self._store.find_inbox_entries(keys),
            self._store.get_conversations((e.recipient_id, e.message.conversation_id) for _, e in items),
            self._store.max_user_seqs(unknown) if unknown else no_maxima(),
            self._store.sessions_of(users),
        )
        self.counters.seed(maxima)
        fresh = [(item, e) for item, e in items if (e.recipient_id, e.message.message_id) not in entries]

        new_entries: list[InboxEntry] = []
        if fresh:
            stored_conversations = dict(conversations)
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
                before = conversations.get(conv_key)
                version = self.conversations.version_for(entry.user_id, [before.version] if before else [])
                conversations[conv_key] = fold_conversation(before, entry, version=version)
                changed.add(conv_key)
            # the entries were looked up above by this worker, the users' single writer, and the
            # conversation rows read: the store need not read them again (WriterReads)
            checked = WriterReads(
                max_seqs=self.counters.committed_of({e.user_id for e in new_entries}),
                conversations={k: stored_conversations[k] for k in changed if k in stored_conversations},
            )
            await self._store.save_inbox(new_entries, [conversations[k] for k in sorted(changed)], checked=checked)
            self.counters.commit()

        result = StageResult()
        dispatch: dict[tuple[int, str], list[tuple[Incoming, _Fanned, int]]] = {}
        """(input record, edge) -> the deliveries of that record's message to that edge."""
        for item, event in items:
            entry = entries[(event.recipient_id, event.message.message_id)]
            edges = sorted({s.edge_id for s in sessions.get(event.recipient_id, ())})
            for edge_id in edges:
                dispatch.setdefault((id(item), edge_id), []).append((item, event, entry.user_seq))
            conversation = conversations.get((entry.user_id, entry.conversation_id))
            muted = conversation.muted if conversation else False
            if entry.counted and wants_push(
                recipient_id=event.recipient_id,
                sender_id=event.message.sender_id,
                online_sessions=len(edges),
                muted=muted,
            ):
                unread = conversation.unread if conversation else 1
                result.outputs.append(self._push(item, event, entry.user_seq, unread))
        for (_, edge_id), deliveries in dispatch.items():
            result.outputs.extend(self._dispatch(edge_id, deliveries))
        return result

    def _dispatch(self, edge_id: str, deliveries: list[tuple[Incoming, _Fanned, int]]) -> list[Output]:
        """One record per partition of the edge topic among ``deliveries`` (one message, one edge)."""
        by_partition: dict[int, list[tuple[Incoming, _Fanned, int]]] = {}
        for delivery in deliveries:
            by_partition.setdefault(partition_for(delivery[1].recipient_id.encode(), self._edge_partitions), []).append(
                delivery
            )
        topic = self._edge_topic(edge_id)
        outputs = []
        for partition, group in sorted(by_partition.items()):
            item, first, user_seq = group[0]
            source = item.envelope
            if len(group) == 1:
                event: MessageDispatched | MessageDispatchedBatch = MessageDispatched(
                    recipient_id=first.recipient_id, user_seq=user_seq, edge_id=edge_id, message=first.message
                )
                part = f"{edge_id}/{first.recipient_id}"
            else:
                event = MessageDispatchedBatch(
                    recipient_ids=tuple(f.recipient_id for _, f, _ in group),
                    user_seqs=tuple(seq for _, _, seq in group),
                    edge_id=edge_id,
                    message=first.message,
                )
                part = f"{edge_id}/#p{partition}"  # "#" is in no id
            envelope = new_envelope(
                event,
                user_id=first.recipient_id,
                trace_id=source.trace_id,
                span_context=source.span_context,
                envelope_id=output_envelope_id(source.id, self.name, part),
            )
            outputs.append(Output(topic, first.recipient_id.encode(), envelope, partition))
        return outputs

    def _push(self, item: Incoming, event: _Fanned, user_seq: int, unread: int) -> Output:
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
            envelope_id=output_envelope_id(item.envelope.id, self.name, f"push/{event.recipient_id}"),
        )
        return Output(self._push_topic, event.recipient_id.encode(), envelope)


def _fanned_out(item: Incoming) -> list[_Fanned]:
    event = item.envelope.payload
    if isinstance(event, MessageFannedOutBatch):
        return [_Fanned(recipient, event.message) for recipient in event.recipient_ids]
    assert isinstance(event, MessageFannedOut)
    return [_Fanned(event.recipient_id, event.message)]


def _entry(event: _Fanned, user_seq: int, now_ms: int) -> InboxEntry:
    message: ChatMessage = event.message
    counted = message.kind == "message"  # change entries and system messages raise no badge
    return InboxEntry(
        user_id=event.recipient_id,
        user_seq=user_seq,
        message_id=message.message_id,
        conversation_id=message.conversation_id,
        conversation_seq=message.seq,
        sender_id=message.sender_id,
        created_at_ms=now_ms,
        mentioned=counted and event.recipient_id in message.mentions and event.recipient_id != message.sender_id,
        counted=counted,
    )
