"""Against a real broker: publish every event with the typed API, read it back with a plain
aiokafka consumer, decode and compare; keys keep one conversation in one partition."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from chat_events.codec import AvroEnvelopeCodec
from chat_events.events import Envelope
from chat_events.kafka.connection import KafkaTarget
from chat_events.producers import EventPublisher, PublishResult
from chat_events.settings import Settings
from chat_events.topics import TopicCatalog

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("topics")]


async def read_all(target: KafkaTarget, settings: Settings, topic: str, expected: int) -> list:  # type: ignore[type-arg]
    """Every record of ``topic`` from the beginning, with a plain aiokafka consumer."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=target.bootstrap_servers, fetch_max_wait_ms=10, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list = []  # type: ignore[type-arg]
        async with asyncio.timeout(20):
            while len(records) < expected:
                batch = await consumer.getmany(timeout_ms=200)
                for part in batch.values():
                    records.extend(part)
        await asyncio.sleep(0.3)  # anything beyond `expected` would show up here
        for part in (await consumer.getmany(timeout_ms=200)).values():
            records.extend(part)
        return records
    finally:
        await consumer.stop()


async def test_each_event_round_trips_through_the_broker(
    settings: Settings, kafka_target: KafkaTarget, codec: AvroEnvelopeCodec
) -> None:
    async with EventPublisher(settings, kafka_target, codec) as publisher:
        sent: list[PublishResult] = [
            await publisher.publish_personal_chat_sent(
                sender_id="alice", target_id="bob", payload="hi bob", client_msg_id="n-1", mentions=["bob"]
            ),
            await publisher.publish_personal_chat_sent(
                sender_id="alice",
                target_id="g-42",
                target_type="group",
                payload='{"url":"https://cdn.example/all.png","width":64,"height":64}',
                target_members=["bob", "carol"],
                message_type="image",
            ),
            await publisher.publish_user_connected(
                user_id="alice", session_id="s-1", edge_id="edge-a", device_id="web"
            ),
            await publisher.publish_user_disconnected(
                user_id="alice", session_id="s-1", reason="conflict_login", code=4007, forced=True, edge_id="edge-a"
            ),
            await publisher.publish_user_chat_rate_limited(
                user_id="alice", action="send", limit=20, window_ms=10_000, retry_after_ms=1_500
            ),
        ]
    catalog = TopicCatalog(settings)
    received: dict[str, Envelope] = {}
    for topic, count in ((catalog.for_event("personalChatSent").name, 2), (catalog.for_event("userConnected").name, 3)):
        for record in await read_all(kafka_target, settings, topic, count):
            envelope = codec.decode(record.value)
            received[envelope.id] = envelope
            result = next(r for r in sent if r.envelope.id == envelope.id)
            assert (record.topic, record.partition, record.offset) == (result.topic, result.partition, result.offset)
    assert len(received) == len(sent)
    for result in sent:
        assert received[result.envelope.id] == result.envelope
    dm = received[sent[0].envelope.id]
    assert dm.payload.conversation_id == "dm:alice:bob"  # type: ignore[union-attr]
    assert dm.user_id == "alice" and dm.trace_id


async def test_one_conversation_lands_in_one_partition_in_send_order(
    settings: Settings, kafka_target: KafkaTarget, codec: AvroEnvelopeCodec
) -> None:
    pairs = [("alice", "bob"), ("carol", "dave"), ("erin", "frank"), ("gina", "hank"), ("ivan", "judy")]
    sent_order: dict[str, list[str]] = defaultdict(list)
    async with EventPublisher(settings, kafka_target, codec) as publisher:
        for i in range(60):
            a, b = pairs[i % len(pairs)]
            sender, target = (a, b) if i % 2 else (b, a)  # both directions of each pair
            result = await publisher.publish_personal_chat_sent(sender_id=sender, target_id=target, payload=f"m{i}")
            sent_order[result.envelope.payload.conversation_id].append(result.envelope.id)  # type: ignore[union-attr]
    records = await read_all(kafka_target, settings, TopicCatalog(settings).for_event("personalChatSent").name, 60)
    assert len(records) == 60
    partitions: dict[str, set[int]] = defaultdict(set)
    stored_order: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for record in records:
        envelope = codec.decode(record.value)
        conversation = envelope.payload.conversation_id  # type: ignore[union-attr]
        assert record.key == conversation.encode()
        partitions[conversation].add(record.partition)
        stored_order[conversation].append((record.offset, envelope.id))
    assert all(len(p) == 1 for p in partitions.values()), partitions
    for conversation, ids in sent_order.items():
        assert [envelope_id for _, envelope_id in sorted(stored_order[conversation])] == ids


async def test_publish_many_batches_and_keeps_input_order(
    settings: Settings, kafka_target: KafkaTarget, codec: AvroEnvelopeCodec
) -> None:
    from chat_events.events import PersonalChatSent, new_envelope

    envelopes = [
        new_envelope(
            PersonalChatSent(
                message_id=f"00000000-0000-4000-8000-{i:012d}",
                sender_id="alice",
                target_id="bob",
                payload=f"batch {i}",
                target_type="user",
                conversation_id="dm:alice:bob",
            ),
            user_id="alice",
        )
        for i in range(500)
    ]
    async with EventPublisher(settings, kafka_target, codec) as publisher:
        results = await publisher.publish_many(envelopes)
    assert [r.envelope for r in results] == envelopes
    assert len({r.partition for r in results}) == 1
    offsets = [r.offset for r in results]
    assert offsets == sorted(offsets) and len(set(offsets)) == 500
