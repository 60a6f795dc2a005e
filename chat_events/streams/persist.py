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

from chat_events.errors import EventValidationError
from chat_events.events.conversations import conversation_id_of
from chat_events.events.factory import new_envelope
from chat_events.events.types import ChatMessage, MessageStored, PersonalChatSent
from chat_events.events.validation import validate_envelope
from chat_events.store.models import WriterReads
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
    name = "persist"
    accepts = frozenset({PersonalChatSent.EVENT_NAME})

    def __init__(self, store: MessageStore, *, stored_topic: str, max_payload_bytes: int) -> None:
        self._store = store
        self._stored_topic = stored_topic
        self._max_payload_bytes = max_payload_bytes
        self.counters = SeqCounters()

    def reset(self) -> None:
        self.counters.forget()

    async def handle(self, batch: Sequence[Incoming]) -> StageResult:
        result, _ = await self.persist(batch)
        return result

    async def persist(self, batch: Sequence[Incoming]) -> tuple[StageResult, list[Incoming]]:
        """:meth:`handle`, also returning each announced message as the ``messageStored`` input
        the fan-out would consume (record = the original ``personalChatSent`` record); a
        duplicate input has no entry (module docstring)."""
        result = StageResult()
        valid: list[tuple[Incoming, PersonalChatSent]] = []
        for item in batch:
            try:
                validate_envelope(item.envelope, max_payload_bytes=self._max_payload_bytes)
            except EventValidationError as exc:
                result.rejects.append(Reject(item.record, exc.code, str(exc)))
                continue
            assert isinstance(item.envelope.payload, PersonalChatSent)
            valid.append((item, item.envelope.payload))
        if not valid:
            return result, []

        conversations = {conversation_id_of(e) for _, e in valid}
        unknown = self.counters.unknown(conversations)
        stored, by_client, maxima = await asyncio.gather(  # independent reads: one round trip, not three
            self._store.find_messages(e.message_id for _, e in valid),
            self._store.find_client_messages((e.sender_id, e.client_msg_id) for _, e in valid if e.client_msg_id),
            self._store.max_conversation_seqs(unknown) if unknown else no_maxima(),
        )
        self.counters.seed(maxima)

        now_ms = int(time.time() * 1000)
        new: list[ChatMessage] = []
        origins: dict[str, str] = {}  # of the messages this batch stores
        carried: list[tuple[Incoming, ChatMessage]] = []
        for item, event in valid:
            client_key = (event.sender_id, event.client_msg_id) if event.client_msg_id else None
            message = stored.get(event.message_id) or (by_client.get(client_key) if client_key else None)
            if message is None:
                message = self._new_message(item, event, now_ms)
                new.append(message)
                origins[message.message_id] = item.envelope.id
                stored[message.message_id] = message
                if client_key:
                    by_client[client_key] = message
            carried.append((item, message))

        found = {message.message_id for _, message in carried} - origins.keys()
        recorded = await self._store.message_origins(found) if found else {}
        # every message of `new` was looked up by id and by client key above, by the single writer
        # of its conversation: the store need not read that again (WriterReads)
        checked = WriterReads(max_seqs=self.counters.committed_of({m.conversation_id for m in new}))
        await self._store.save_messages(new, origins, checked=checked)
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
            output = self._stored_output(item, message)
            result.outputs.append(output)
            stored_items.append(Incoming(item.record, output.envelope))
        return result, stored_items

    def _new_message(self, item: Incoming, event: PersonalChatSent, now_ms: int) -> ChatMessage:
        conversation_id = conversation_id_of(event)
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
            mentions=event.mentions,
            sent_at_ms=timestamp_ms(item.envelope.timestamp),
            stored_at_ms=now_ms,
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
