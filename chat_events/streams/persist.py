"""Persist stage: ``chat.personal-chat`` -> store -> ``chat.message-stored``.

Input is keyed (and so partitioned) by conversation id, so this worker is the only one assigning
seqs for the conversations it sees, in the order they were sent. Dedupe: a message id already
stored — or a ``(sender, client_msg_id)`` already stored under another id (a retried send) — is
not stored again.

Announced once. Each message is stored with its *origin*, the envelope id of the
``personalChatSent`` record that stored it. A record whose message is already stored is then one
of two things (:func:`announced` decides, a pure function):

* a **replay** of that same record (after a crash, a rebalance or an aborted transaction): the
  origin is this record's envelope id, so the stored message, with its original seq, is emitted
  again exactly as the first time (the same deterministic envelope ids), because the first
  emission may never have reached the broker;
* a **duplicate input**: another record carrying the same message (a send retried after a lost
  ACK, a producer that re-sent during a broker outage: the same sender and ``client_msg_id``
  give the same message id). Its origin is another envelope id, whose record announced (or, if
  replayed, will announce) the message, so this one emits nothing: no ``messageStored``, no
  fan-out, no dead letter; it is logged at DEBUG.

A message stored before origins were recorded has none: it is emitted as before, for any record.
Within one batch a message is emitted at most once, by its first record. What remains: one
record written twice to the log with the same envelope id (a producer retry without
idempotence, as on the embedded broker) looks like its own replay across batches; both copies
carry the same output ids, so consumers can drop the repeat by id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

from chat_events.errors import EventValidationError
from chat_events.events.change_rules import (
    ChangeRefusal,
    ChangeWindows,
    announced_entry,
    change_entry,
    change_refusal,
    changed_target,
    group_administrators,
)
from chat_events.events.conversations import conversation_id_of
from chat_events.events.factory import new_envelope
from chat_events.events.message_events import (
    MESSAGE_CHANGE_EVENTS,
    MessageChange,
    MessageDeleted,
    MessageEdited,
    MessageReacted,
)
from chat_events.events.types import ChatMessage, MessageStored, PersonalChatSent
from chat_events.events.validation import validate_envelope
from chat_events.store.models import Reaction, WriterReads
from chat_events.store.port import MessageStore
from chat_events.streams.records import (
    Incoming,
    Output,
    Reject,
    StageResult,
    no_maxima,
    output_envelope_id,
    timestamp_ms,
)
from chat_events.streams.sequencing import SeqCounters

log = logging.getLogger(__name__)

Input = PersonalChatSent | MessageChange

DEFAULT_WINDOWS = ChangeWindows(edit_ms=48 * 3600 * 1000, recall_ms=48 * 3600 * 1000)


def _entry_id(event: Input) -> str:
    """The id of the conversation entry an input stores: the message's, or the change's."""
    return event.message_id if isinstance(event, PersonalChatSent) else event.change_id


def _client_key(event: Input) -> tuple[str, str] | None:
    if isinstance(event, PersonalChatSent):
        return (event.sender_id, event.client_msg_id) if event.client_msg_id else None
    return (event.actor_id, event.client_msg_id)


def _conversation_of(event: Input) -> str:
    return conversation_id_of(event) if isinstance(event, PersonalChatSent) else event.conversation_id


def _related_id(event: Input) -> str | None:
    """The stored message an input needs: the one a change changes, or the one a send answers."""
    return event.reply_to if isinstance(event, PersonalChatSent) else event.message_id


async def _no_messages() -> dict[str, ChatMessage]:
    return {}


def announced(records: Sequence[tuple[str, str]], origins: Mapping[str, str]) -> list[bool]:
    """Which records of a batch emit their message's outputs.

    ``records``: per record in batch order, ``(its envelope id, the id of the message it
    carries)`` (the message stored, or found by id or by ``(sender, client_msg_id)``);
    ``origins``: message id -> the envelope id of the record that stored it, for the messages
    stored in this batch and those found with an origin recorded. A record emits when the
    message's origin is the record itself (it stores the message now, or this is its replay) or
    unknown (stored before origins were recorded), and no earlier record of the batch emitted
    the same message.
    """
    emitted: set[str] = set()
    out: list[bool] = []
    for envelope_id, message_id in records:
        origin = origins.get(message_id)
        emit = message_id not in emitted and origin in (None, envelope_id)
        if emit:
            emitted.add(message_id)
        out.append(emit)
    return out


class PersistStage:
    """Stores sends and applies changes to sent messages (see :mod:`chat_events.events.change_rules`):
    both are entries of the conversation with the next seq, stored, deduped and announced alike."""

    name = "persist"
    accepts = frozenset({PersonalChatSent.EVENT_NAME, *(cls.EVENT_NAME for cls in MESSAGE_CHANGE_EVENTS)})

    def __init__(
        self,
        store: MessageStore,
        *,
        stored_topic: str,
        max_payload_bytes: int,
        windows: ChangeWindows = DEFAULT_WINDOWS,
    ) -> None:
        self._store = store
        self._stored_topic = stored_topic
        self._max_payload_bytes = max_payload_bytes
        self._windows = windows
        self.counters = SeqCounters()

    def reset(self) -> None:
        self.counters.forget()

    async def handle(self, batch: Sequence[Incoming]) -> StageResult:
        result, _ = await self.persist(batch)
        return result

    async def persist(self, batch: Sequence[Incoming]) -> tuple[StageResult, list[Incoming]]:
        """:meth:`handle`, also returning each announced message as the ``messageStored`` input
        the fan-out would consume (record = the original input record); a duplicate input has
        no entry (module docstring)."""
        result = StageResult()
        valid: list[tuple[Incoming, Input]] = []
        for item in batch:
            try:
                validate_envelope(item.envelope, max_payload_bytes=self._max_payload_bytes)
            except EventValidationError as exc:
                result.rejects.append(Reject(item.record, exc.code, str(exc)))
                continue
            assert isinstance(item.envelope.payload, (PersonalChatSent, *MESSAGE_CHANGE_EVENTS))
            valid.append((item, item.envelope.payload))
        if not valid:
            return result, []

        conversations = {_conversation_of(e) for _, e in valid}
        unknown = self.counters.unknown(conversations)
        related = {r for _, e in valid if (r := _related_id(e)) is not None}
        stored, by_client, maxima, current = await asyncio.gather(  # independent reads: one round trip
            self._store.find_messages(_entry_id(e) for _, e in valid),
            self._store.find_client_messages(k for _, e in valid if (k := _client_key(e)) is not None),
            self._store.max_conversation_seqs(unknown) if unknown else no_maxima(),
            self._store.find_messages(related) if related else _no_messages(),
        )
        self.counters.seed(maxima)
        admins = await self._group_admins(valid)

        now_ms = int(time.time() * 1000)
        new: dict[str, ChatMessage] = {}  # message id -> row to store, in seq order
        changed: dict[str, ChatMessage] = {}  # messages stored before this batch, rewritten by a change
        reactions: list[Reaction] = []
        hidden: list[tuple[str, str, int]] = []
        origins: dict[str, str] = {}  # of the messages this batch stores
        carried: list[tuple[Incoming, ChatMessage]] = []
        announce: dict[str, ChatMessage] = {}  # new edit entries as announced
        for item, event in valid:
            client_key = _client_key(event)
            message = stored.get(_entry_id(event)) or (by_client.get(client_key) if client_key else None)
            if message is None:
                at_ms = timestamp_ms(item.envelope.timestamp)
                if isinstance(event, PersonalChatSent):
                    message = self._new_message(item, event, now_ms, current)
                else:
                    target = current.get(event.message_id)
                    seq = self.counters.peek(event.conversation_id)
                    reapplied = target is not None and target.changed_seq == seq  # a crash between the writes
                    refusal = None if reapplied else self._refusal(event, target, at_ms, admins)
                    if refusal is not None:
                        result.rejects.append(Reject(item.record, f"change_{refusal.code}", refusal.reason))
                        continue
                    assert target is not None
                    seq = self.counters.allocate(event.conversation_id)
                    message = change_entry(event, target, seq=seq, at_ms=at_ms, stored_at_ms=now_ms)
                    after = changed_target(event, target, seq=seq, at_ms=at_ms)
                    if isinstance(event, MessageEdited):  # pushed with the text it set (stored without)
                        announce[message.message_id] = replace(message, payload=event.payload, mentions=event.mentions)
                    if after is not None:
                        current[target.message_id] = after
                        (new if target.message_id in new else changed)[target.message_id] = after
                    if isinstance(event, MessageReacted):  # the entry's seq orders a user's reactions
                        reactions.append(
                            Reaction(
                                message_id=target.message_id,
                                user_id=event.actor_id,
                                emoji=event.emoji,
                                active=event.added,
                                at_ms=seq,
                            )
                        )
                    elif message.kind == "delete_for_me":
                        hidden.append((event.actor_id, target.message_id, at_ms))
                new[message.message_id] = message
                origins[message.message_id] = item.envelope.id
                stored[message.message_id] = message
                current[message.message_id] = message
                if client_key:
                    by_client[client_key] = message
            carried.append((item, message))

        found = {message.message_id for _, message in carried} - origins.keys()
        recorded = await self._store.message_origins(found) if found else {}
        # a change rewrites its message before its entry is stored: a crash in between replays the
        # change onto the rewritten message (changed_seq == the entry's seq: re-applied, not refused)
        await self._write_changes(list(changed.values()), reactions, hidden)
        # every message of `new` was looked up by id and by (sender, client_msg_id) above, by the single
        # writer of its conversation: the store need not read that again (WriterReads)
        rows = list(new.values())
        checked = WriterReads(max_seqs=self.counters.committed_of({m.conversation_id for m in rows}))
        await self._store.save_messages(rows, origins, checked=checked)
        self.counters.commit()
        stored_items = []
        emits = announced([(item.envelope.id, message.message_id) for item, message in carried], recorded | origins)
        for (item, message), emit in zip(carried, emits, strict=True):
            if not emit:
                log.debug(
                    "duplicate input %s[%d]@%d (envelope %s): message %s (origin %s) is announced by another "
                    "record; nothing emitted",
                    item.record.topic,
                    item.record.partition,
                    item.record.offset,
                    item.envelope.id,
                    message.message_id,
                    origins.get(message.message_id) or recorded.get(message.message_id),
                )
                continue
            if message.message_id in announce:
                message = announce[message.message_id]
            elif message.relates_to is not None:  # a replay: the text while the edit is the latest
                message = announced_entry(message, current.get(message.relates_to))
            output = self._stored_output(item, message)
            result.outputs.append(output)
            stored_items.append(Incoming(item.record, output.envelope))
        return result, stored_items

    async def _write_changes(
        self, changed: list[ChatMessage], reactions: list[Reaction], hidden: list[tuple[str, str, int]]
    ) -> None:
        writes = []
        if changed:
            writes.append(self._store.update_messages(changed))
        if reactions:
            writes.append(self._store.save_reactions(reactions))
        for user_id, message_id, at_ms in hidden:
            writes.append(self._store.hide_messages(user_id, [message_id], at_ms=at_ms))
        if writes:
            await asyncio.gather(*writes)

    async def _group_admins(self, valid: Sequence[tuple[Incoming, Input]]) -> dict[str, frozenset[str]]:
        """Owner and admins of the groups where someone deletes a message for everyone (the only
        change an admin may make to another's message)."""
        group_ids = {
            e.conversation_id
            for _, e in valid
            if isinstance(e, MessageDeleted) and e.scope == "everyone" and not e.conversation_id.startswith("dm:")
        }
        out: dict[str, frozenset[str]] = {}
        for group_id in group_ids:
            group = await self._store.get_group(group_id)
            out[group_id] = group_administrators(group)
        return out

    def _refusal(
        self, event: MessageChange, target: ChatMessage | None, at_ms: int, admins: dict[str, frozenset[str]]
    ) -> ChangeRefusal | None:
        admin = event.actor_id in admins.get(event.conversation_id, frozenset())
        return change_refusal(event, target, at_ms=at_ms, windows=self._windows, admin=admin)

    def _new_message(
        self, item: Incoming, event: PersonalChatSent, now_ms: int, current: dict[str, ChatMessage]
    ) -> ChatMessage:
        conversation_id = conversation_id_of(event)
        reply_to = event.reply_to
        if reply_to is not None:
            answered = current.get(reply_to)
            if answered is None or answered.conversation_id != conversation_id:
                log.debug(
                    "message %s: reply_to %s is not in %s; stored without it",
                    event.message_id,
                    reply_to,
                    conversation_id,
                )
                reply_to = None
        return ChatMessage(
            message_id=event.message_id,
            conversation_id=conversation_id,
            seq=self.counters.allocate(conversation_id),
            sender_id=event.sender_id,
            target_type=event.target_type,
            target_id=event.target_id,
            message_type=event.message_type,
            payload=event.payload,
            client_msg_id=event.client_msg_id,
            # a system message names whom it concerns beyond the members (a member just removed)
            mentions=tuple(sorted({*event.mentions, *event.target_members}))
            if event.kind == "system"
            else event.mentions,
            sent_at_ms=timestamp_ms(item.envelope.timestamp),
            stored_at_ms=now_ms,
            kind=event.kind,
            reply_to=reply_to,
        )

    def _stored_output(self, item: Incoming, message: ChatMessage) -> Output:
        source = item.envelope
        envelope = new_envelope(
            MessageStored(message=message),
            user_id=message.sender_id,
            client_id=source.client_id,
            session_id=source.session_id,
            trace_id=source.trace_id,
            span_context=source.span_context,
            envelope_id=output_envelope_id(source.id, self.name),
        )
        return Output(self._stored_topic, message.conversation_id.encode(), envelope)
