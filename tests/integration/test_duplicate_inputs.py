"""A message is announced once: ``messageStored`` (and its fan-out) comes from the record that
stored the message and from replays of that record, never from a duplicate input, another
record carrying the same message (same message id, or same ``(sender, client_msg_id)``).

Two levels: the persist + fan-out pass driven directly over a real store (the embedded store,
and real Apache Cassandra in a keyspace per test), and a real worker process over the real
broker on both stacks, read back from ``chat.message-stored``, ``chat.inbox`` and the store.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from chat_events.api.authz import message_id_for
from chat_events.codec import build_codec
from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.events.conversations import conversation_id_of
from chat_events.events.factory import new_envelope
from chat_events.events.types import (
    ChatMessage,
    Envelope,
    MessageFannedOut,
    MessageFannedOutBatch,
    MessageStored,
    PersonalChatSent,
)
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.producers.publisher import EventPublisher
from chat_events.settings import Settings
from chat_events.store.factory import open_store
from chat_events.store.models import Group
from chat_events.store.port import MessageStore
from chat_events.streams.app import build_stages
from chat_events.streams.persist_fanout import PersistFanoutStage
from chat_events.streams.records import Incoming, SourceRecord, StageResult
from chat_events.topics import INBOX, MESSAGE_STORED, TopicCatalog
from tests.conftest import make_settings
from tests.integration.worker_harness import WorkerProcess, read_topic, wait_until
from tests.real_engines import Engines


def uid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def sent(
    sender: str,
    target: str,
    *,
    client_msg_id: str | None = None,
    message_id: str | None = None,
    target_type: str = "user",
    text: str = "hi",
) -> Envelope:
    """A ``personalChatSent`` in a new envelope (new envelope id). The message id is the edge's
    ``uuid5(sender, client_msg_id)`` unless given."""
    if message_id is None:
        message_id = message_id_for(sender, client_msg_id) if client_msg_id else str(uuid.uuid4())
    event = PersonalChatSent(
        message_id=message_id,
        sender_id=sender,
        target_id=target,
        payload=text,
        target_type=target_type,
        client_msg_id=client_msg_id,
    )
    return new_envelope(replace(event, conversation_id=conversation_id_of(event)), user_id=sender)


def again(envelope: Envelope) -> Envelope:
    """The same event in another envelope: what a retried send or a re-publishing edge produces."""
    return new_envelope(envelope.payload, user_id=envelope.user_id)


# --- the persist + fan-out pass over a real store ----------------------------------------


@dataclass
class Pass:
    stage: PersistFanoutStage
    store: MessageStore
    codec: AvroEnvelopeCodec
    offset: int = 0

    def record(self, envelope: Envelope) -> Incoming:
        """``envelope`` as the next record of ``chat.personal-chat``."""
        self.offset += 1
        value = self.codec.encode(envelope)
        key = (envelope.payload.conversation_id or "").encode()  # type: ignore[union-attr]
        return Incoming(SourceRecord("chat.personal-chat", 0, self.offset, key, value), self.codec.decode(value))

    async def handle(self, *records: Incoming) -> StageResult:
        return await self.stage.handle(records)


def outputs(result: StageResult) -> list[tuple[Any, ...]]:
    """What a consumer can tell outputs apart by (the envelope timestamp is the send time)."""
    return [(o.topic, o.key, o.partition, o.envelope.id, o.envelope.name, o.envelope.payload) for o in result.outputs]


def stored_ids(result: StageResult) -> list[str]:
    return [
        o.envelope.payload.message.message_id for o in result.outputs if isinstance(o.envelope.payload, MessageStored)
    ]


def fanned_out(result: StageResult) -> list[str]:
    """The recipients of the inbox records among the outputs (a batch record counts each)."""
    recipients: list[str] = []
    for o in result.outputs:
        if isinstance(o.envelope.payload, MessageFannedOut):
            recipients.append(o.envelope.payload.recipient_id)
        elif isinstance(o.envelope.payload, MessageFannedOutBatch):
            recipients.extend(o.envelope.payload.recipient_ids)
    return sorted(recipients)


@pytest.fixture(params=["embedded", "cassandra"])
async def persist(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Pass]:
    store_settings: dict[str, object] = {}
    if request.param == "cassandra":
        engines: Engines = request.getfixturevalue("engines")
        store_settings = {
            "cassandra_contact_points": engines.cassandra_contact_point(),
            "cassandra_keyspace": engines.keyspace(f"{__name__}.{request.node.name}"),
        }
    settings = Settings(data_dir=tmp_path, topic_partitions=2, **store_settings)  # type: ignore[arg-type]
    async with open_store(settings) as store:
        stages = build_stages(settings, store)
        yield Pass(PersistFanoutStage(stages.persist, stages.fanout), store, build_codec(settings))


async def test_the_same_record_twice_emits_the_same_outputs_twice(persist: Pass) -> None:
    alice, bob = uid("alice"), uid("bob")
    record = persist.record(sent(alice, bob, client_msg_id="n-1"))
    first = await persist.handle(record)
    assert stored_ids(first) == [record.envelope.payload.message_id]  # type: ignore[union-attr]
    assert first.outputs[0].envelope.name == "messageStored"
    assert fanned_out(first) == sorted([alice, bob]) and not first.rejects
    replay = await persist.handle(record)  # after a crash or an aborted transaction
    assert outputs(replay) == outputs(first) and not replay.rejects


async def test_a_second_record_with_the_same_message_id_emits_nothing(persist: Pass) -> None:
    alice, bob = uid("alice"), uid("bob")
    envelope = sent(alice, bob, message_id=str(uuid.uuid4()))  # no client_msg_id: found by id only
    original = persist.record(envelope)
    first = await persist.handle(original)
    duplicate = await persist.handle(persist.record(again(envelope)))
    assert duplicate.outputs == [] and duplicate.rejects == []
    assert outputs(await persist.handle(original)) == outputs(first)  # the original's replay still emits
    [message] = (await persist.store.conversation_messages(conversation_of(envelope), after_seq=0)).items
    assert message.message_id == envelope.payload.message_id  # type: ignore[union-attr]


async def test_a_second_record_with_the_same_sender_and_client_msg_id_emits_nothing(persist: Pass) -> None:
    alice, bob = uid("alice"), uid("bob")
    envelope = sent(alice, bob, client_msg_id="n-1")
    first = await persist.handle(persist.record(envelope))
    other_id = sent(alice, bob, client_msg_id="n-1", message_id=str(uuid.uuid4()))  # found by client id only
    assert (await persist.handle(persist.record(other_id))).outputs == []
    assert (await persist.handle(persist.record(again(envelope)))).outputs == []
    assert stored_ids(first) == [envelope.payload.message_id]  # type: ignore[union-attr]
    assert len((await persist.store.conversation_messages(conversation_of(envelope), after_seq=0)).items) == 1


async def test_within_one_batch_only_the_first_record_of_a_message_emits(persist: Pass) -> None:
    alice, bob = uid("alice"), uid("bob")
    envelope = sent(alice, bob, client_msg_id="n-1")
    other = sent(alice, bob, text="another message")
    batch = [
        persist.record(envelope),
        persist.record(again(envelope)),
        persist.record(sent(alice, bob, client_msg_id="n-1", message_id=str(uuid.uuid4()))),
        persist.record(other),
    ]
    result = await persist.handle(*batch)
    assert stored_ids(result) == [envelope.payload.message_id, other.payload.message_id]  # type: ignore[union-attr]
    assert fanned_out(result) == sorted([alice, bob, alice, bob]) and not result.rejects  # once per message
    assert outputs(await persist.handle(*batch)) == outputs(result)  # the batch replayed: the same


async def test_a_duplicate_of_a_refused_group_post_is_not_dead_lettered_again(persist: Pass) -> None:
    owner, outsider, group_id = uid("owner"), uid("mallory"), uid("g")
    await persist.store.save_group(Group(group_id=group_id, name="closed", owner_id=owner, created_at_ms=1), [owner])
    envelope = sent(outsider, group_id, target_type="group", client_msg_id="n-1")
    first = await persist.handle(persist.record(envelope))
    assert [r.error_code for r in first.rejects] == ["not_a_member"]
    duplicate = await persist.handle(persist.record(again(envelope)))
    assert duplicate.outputs == [] and duplicate.rejects == []


async def test_a_message_stored_before_origins_is_announced_as_before(persist: Pass) -> None:
    alice, bob = uid("alice"), uid("bob")
    envelope = sent(alice, bob, client_msg_id="n-1")
    event = envelope.payload
    assert isinstance(event, PersonalChatSent)
    legacy = ChatMessage(
        message_id=event.message_id,
        conversation_id=conversation_of(envelope),
        seq=1,
        sender_id=alice,
        target_type="user",
        target_id=bob,
        message_type="text",
        payload=event.payload,
        client_msg_id="n-1",
        sent_at_ms=1,
        stored_at_ms=2,
    )
    await persist.store.save_messages([legacy])  # no origin recorded, as by the code before
    result = await persist.handle(persist.record(again(envelope)))
    assert stored_ids(result) == [event.message_id] and fanned_out(result) == sorted([alice, bob])
    [stored] = [o.envelope.payload for o in result.outputs if isinstance(o.envelope.payload, MessageStored)]
    assert stored.message == legacy  # the stored message, its seq unchanged


def conversation_of(envelope: Envelope) -> str:
    event = envelope.payload
    assert isinstance(event, PersonalChatSent)
    return conversation_id_of(event)


# --- a real worker on the real broker ----------------------------------------------------


@dataclass
class System:
    settings: Settings
    codec: AvroEnvelopeCodec
    publisher: EventPublisher
    store: MessageStore
    catalog: TopicCatalog


@pytest.fixture(scope="module")
async def system(kafka_target: KafkaTarget, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    tmp: Path = tmp_path_factory.mktemp("duplicates")
    settings = make_settings(kafka_target, tmp, worker_app_id=f"w-{uuid.uuid4().hex[:8]}")
    await ensure_topics(settings, kafka_target)
    worker = WorkerProcess(settings, tmp / "worker.log")
    worker.start()
    codec = build_codec(settings)
    try:
        async with EventPublisher(settings, kafka_target, codec) as publisher, open_store(settings) as store:
            yield System(settings, codec, publisher, store, TopicCatalog(settings))
    finally:
        worker.stop()


async def announcements(s: System, message_id: str) -> list[Envelope]:
    """Every ``messageStored`` of ``message_id`` on ``chat.message-stored``, repeats included."""
    envelopes = await read_topic(s.settings, s.codec, s.catalog.resolve(MESSAGE_STORED).name)
    return [e for e in envelopes if isinstance(e.payload, MessageStored) and e.payload.message.message_id == message_id]


async def inbox_records(s: System, message_id: str) -> list[str]:
    """The recipients of every inbox record of ``message_id`` on ``chat.inbox``, repeats included."""
    recipients: list[str] = []
    for e in await read_topic(s.settings, s.codec, s.catalog.resolve(INBOX).name):
        if isinstance(e.payload, MessageFannedOut) and e.payload.message.message_id == message_id:
            recipients.append(e.payload.recipient_id)
        elif isinstance(e.payload, MessageFannedOutBatch) and e.payload.message.message_id == message_id:
            recipients.extend(e.payload.recipient_ids)
    return recipients


async def inbox_ids(s: System, user: str) -> list[str]:
    return [e.message_id for e in (await s.store.inbox_after(user, 0, limit=100)).items]


async def _check_announced_once(s: System, alice: str, bob: str, original: Envelope, marker: Envelope) -> None:
    message_id = original.payload.message_id  # type: ignore[union-attr]
    marker_id = marker.payload.message_id  # type: ignore[union-attr]

    async def marker_delivered() -> bool:  # one input partition, in order: the duplicates were handled before
        return all([marker_id in await inbox_ids(s, user) for user in (alice, bob)])

    await wait_until(marker_delivered, timeout=60, what="the message sent after the duplicates in both inboxes")
    for user in (alice, bob):
        assert await inbox_ids(s, user) == [message_id, marker_id], user
    assert len(await announcements(s, message_id)) == 1  # counted, not deduplicated by id
    assert len(await announcements(s, marker_id)) == 1
    assert sorted(await inbox_records(s, message_id)) == sorted([alice, bob])
    messages = (await s.store.conversation_messages(conversation_of(original), after_seq=0)).items
    assert [(m.message_id, m.seq) for m in messages] == [(message_id, 1), (marker_id, 2)]


async def test_a_message_published_three_times_is_announced_once(system: System) -> None:
    """The original, then (once it is stored) the same event in a second envelope (a re-publish)
    and a third record with another message id but the same (sender, client_msg_id)."""
    s = system
    alice, bob = uid("alice"), uid("bob")
    original = sent(alice, bob, client_msg_id="nonce-1", text="once")
    await s.publisher.publish(original)
    message_id = original.payload.message_id  # type: ignore[union-attr]

    async def stored() -> bool:
        return message_id in await inbox_ids(s, bob)

    await wait_until(stored, timeout=60, what="the original in bob's inbox")
    await s.publisher.publish(again(original))
    await s.publisher.publish(sent(alice, bob, client_msg_id="nonce-1", message_id=str(uuid.uuid4()), text="once"))
    marker = sent(alice, bob, text="after the duplicates")
    await s.publisher.publish(marker)
    await _check_announced_once(s, alice, bob, original, marker)


async def test_duplicates_published_together_are_announced_once(system: System) -> None:
    """The three records sent at once (most likely handled in one batch)."""
    s = system
    alice, bob = uid("alice"), uid("bob")
    original = sent(alice, bob, client_msg_id="nonce-1", text="once")
    marker = sent(alice, bob, text="after the duplicates")
    duplicate_id = sent(alice, bob, client_msg_id="nonce-1", message_id=str(uuid.uuid4()), text="once")
    await s.publisher.publish_many([original, again(original), duplicate_id, marker])
    await _check_announced_once(s, alice, bob, original, marker)
