"""Persist stage: ``chat.personal-chat`` -> store -> ``chat.message-stored``.

Input is keyed (and so partitioned) by conversation id, so this worker is the only one assigning
seqs for the conversations it sees, in the order they were sent. Dedupe: a message id already
stored — or a ``(sender, client_msg_id)`` already stored under another id (a retried send) — is
not stored again: the stored message, with its original seq, is re-emitted instead (its
downstream effects are idempotent too).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from chat_events.errors import EventValidationError
from chat_events.events.conversations import conversation_id_of
from chat_events.events.factory import new_envelope
from chat_events.events.types import ChatMessage, MessageStored, PersonalChatSent
from chat_events.events.validation import validate_envelope
from chat_events.store.port import MessageStore
from chat_events.streams.records import Incoming, Output, Reject, StageResult, output_envelope_id, timestamp_ms
from chat_events.streams.sequencing import SeqCounters


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
        """:meth:`handle`, also returning each stored message as the ``messageStored`` input the
        fan-out would consume (record = the original ``personalChatSent`` record)."""
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

        stored = await self._store.find_messages(e.message_id for _, e in valid)
        by_client = await self._store.find_client_messages(
            (e.sender_id, e.client_msg_id) for _, e in valid if e.client_msg_id
        )
        conversations = {conversation_id_of(e) for _, e in valid}
        unknown = self.counters.unknown(conversations)
        if unknown:
            self.counters.seed(await self._store.max_conversation_seqs(unknown))

        now_ms = int(time.time() * 1000)
        new: list[ChatMessage] = []
        emitted: list[tuple[Incoming, ChatMessage]] = []
        for item, event in valid:
            client_key = (event.sender_id, event.client_msg_id) if event.client_msg_id else None
            message = stored.get(event.message_id) or (by_client.get(client_key) if client_key else None)
            if message is None:
                message = self._new_message(item, event, now_ms)
                new.append(message)
                stored[message.message_id] = message
                if client_key:
                    by_client[client_key] = message
            emitted.append((item, message))

        await self._store.save_messages(new)
        self.counters.commit()
        stored_items = []
        for item, message in emitted:
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
