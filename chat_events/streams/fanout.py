"""Fan-out stage: ``chat.message-stored`` -> ``chat.inbox`` (keyed by recipient so it lands on
the partition that owns the recipient's inbox and sessions; recipients sharing a partition share
one ``messageFannedOutBatch`` record, a lone recipient gets a ``messageFannedOut``), or, for
groups above the write fan-out size, ``chat.room-messages`` (read fan-out: edges push to online
subscribers and members sync by conversation seq) plus the sender's own inbox copy.

Per recipient, order is preserved: one conversation's messages arrive here in seq order (one
partition) and are sent in that order to each recipient's single inbox partition.
"""

from __future__ import annotations

from collections.abc import Sequence

from chat_events.events.factory import new_envelope
from chat_events.events.types import ChatMessage, MessageFannedOut, MessageFannedOutBatch, MessageStored
from chat_events.producers.partitioner import partition_for
from chat_events.store.port import MessageStore
from chat_events.streams.recipients import may_post, plan_fanout, recipients_of
from chat_events.streams.records import Incoming, Output, Reject, StageResult, output_envelope_id


class FanoutStage:
    name = "fanout"
    accepts = frozenset({MessageStored.EVENT_NAME})

    def __init__(
        self, store: MessageStore, *, inbox_topic: str, inbox_partitions: int, room_topic: str, write_max_members: int
    ) -> None:
        self._store = store
        self._inbox_topic = inbox_topic
        self._inbox_partitions = inbox_partitions
        self._room_topic = room_topic
        self._write_max_members = write_max_members

    def reset(self) -> None:
        """Stateless: membership and blocks are read from the store for every batch."""

    async def handle(self, batch: Sequence[Incoming]) -> StageResult:
        messages = [(item, _message(item)) for item in batch]
        group_ids = {m.target_id for _, m in messages if m.target_type == "group"}
        members = await self._store.group_members(group_ids) if group_ids else {}
        blockers = await self._store.blockers_of({m.sender_id for _, m in messages})

        result = StageResult()
        for item, message in messages:
            group = members.get(message.target_id, frozenset()) if message.target_type == "group" else frozenset()
            if not may_post(message.sender_id, target_type=message.target_type, group_members=group, kind=message.kind):
                reason = f"{message.sender_id} is not a member of group {message.target_id}"
                result.rejects.append(Reject(item.record, "not_a_member", reason))
                continue
            recipients = recipients_of(
                sender_id=message.sender_id,
                target_type=message.target_type,
                target_id=message.target_id,
                group_members=group,
                blockers_of_sender=blockers.get(message.sender_id, frozenset()),
                kind=message.kind,
                named=message.mentions if message.kind == "system" else (),
            )
            plan = plan_fanout(recipients, target_type=message.target_type, write_max_members=self._write_max_members)
            if plan.mode == "read":
                result.outputs.append(self._room_output(item, message))
            result.outputs.extend(self._inbox_outputs(item, message, plan.inbox_recipients))
        return result

    def _inbox_outputs(self, item: Incoming, message: ChatMessage, recipients: Sequence[str]) -> list[Output]:
        """One record per inbox partition among ``recipients`` (explicit partition for batches)."""
        by_partition: dict[int, list[str]] = {}
        for recipient in recipients:
            by_partition.setdefault(partition_for(recipient.encode(), self._inbox_partitions), []).append(recipient)
        source = item.envelope
        outputs = []
        for partition, group in sorted(by_partition.items()):
            if len(group) == 1:
                event: MessageFannedOut | MessageFannedOutBatch = MessageFannedOut(
                    recipient_id=group[0], message=message
                )
                part = group[0]
            else:
                event = MessageFannedOutBatch(recipient_ids=tuple(group), message=message)
                part = f"#p{partition}"  # "#" is in no id: never a lone recipient's part
            envelope = new_envelope(
                event,
                user_id=group[0],
                trace_id=source.trace_id,
                span_context=source.span_context,
                envelope_id=output_envelope_id(source.id, self.name, part),
            )
            outputs.append(Output(self._inbox_topic, group[0].encode(), envelope, partition))
        return outputs

    def _room_output(self, item: Incoming, message: ChatMessage) -> Output:
        source = item.envelope
        envelope = new_envelope(
            MessageStored(message=message),
            user_id=message.sender_id,
            trace_id=source.trace_id,
            span_context=source.span_context,
            envelope_id=output_envelope_id(source.id, self.name, "room"),
        )
        return Output(self._room_topic, message.conversation_id.encode(), envelope)


def _message(item: Incoming) -> ChatMessage:
    event = item.envelope.payload
    assert isinstance(event, MessageStored)
    return event.message
