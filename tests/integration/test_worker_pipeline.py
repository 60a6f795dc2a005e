"""The worker end to end: a real worker process, the real broker and the stack's store (embedded
SQLite, or Cassandra on the ``kafka`` stack), read through the store port.

One worker serves the whole module (its own topic prefix and consumer group); each test uses
its own users and conversations.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from chat_events.codec import AvroEnvelopeCodec, build_codec
from chat_events.events.factory import new_envelope
from chat_events.events.types import (
    GroupCreated,
    MessageDispatched,
    OfflinePushRequested,
    RecordDeadLettered,
    UserBlocked,
    UserDisconnected,
    UserPresenceChanged,
)
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.producers.publisher import EventPublisher
from chat_events.settings import Settings
from chat_events.store.factory import open_store
from chat_events.store.port import MessageStore
from chat_events.topics import DEAD_LETTER, PERSONAL_CHAT, PRESENCE, PUSH, USER_EVENTS, TopicCatalog
from tests.conftest import make_settings
from tests.integration.worker_harness import WorkerProcess, edge_alive, heartbeat, read_topic, wait_until


@dataclass
class Pipeline:
    settings: Settings
    codec: AvroEnvelopeCodec
    publisher: EventPublisher
    store: MessageStore
    worker: WorkerProcess
    catalog: TopicCatalog

    def topic(self, spec: object) -> str:
        return self.catalog.resolve(spec).name  # type: ignore[arg-type]


@pytest.fixture(scope="module")
async def pipeline(
    kafka_target: KafkaTarget, worker_engine: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Pipeline]:
    tmp: Path = tmp_path_factory.mktemp("pipeline")
    settings = make_settings(
        kafka_target,
        tmp,
        worker_app_id=f"w-{uuid.uuid4().hex[:8]}",
        worker_engine=worker_engine,
        edge_heartbeat_timeout_ms=1500,
        fanout_write_max_members=60,
    )
    await ensure_topics(settings, kafka_target)
    worker = WorkerProcess(settings, tmp / "worker.log")
    worker.start()
    codec = build_codec(settings)
    try:
        async with (
            EventPublisher(settings, kafka_target, codec) as publisher,
            open_store(settings) as store,
        ):
            yield Pipeline(settings, codec, publisher, store, worker, TopicCatalog(settings))
    finally:
        worker.stop()


def uid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


async def inbox_of(p: Pipeline, user: str) -> list[tuple[int, str, int]]:
    """The user's inbox without the groups' system messages ("alice created the group": a
    group's first seq, and the member's first user seq, are its ``groupCreated``)."""
    page = await p.store.inbox_after(user, 0, limit=10_000)
    stored = await p.store.find_messages(e.message_id for e in page.items)
    return [(e.user_seq, e.message_id, e.conversation_seq) for e in page.items if stored[e.message_id].kind != "system"]


async def connect_on_edge(p: Pipeline, user: str, edge_id: str) -> None:
    await ensure_topics(
        p.settings,
        KafkaTarget(p.settings.kafka_bootstrap_servers or "", embedded=True),
        [p.catalog.edge_topic(edge_id)],
    )
    await p.publisher.publish_user_connected(user_id=user, session_id=uid("s"), edge_id=edge_id, device_id="phone")

    async def online() -> bool:
        return bool((await p.store.sessions_of([user]))[user])

    await wait_until(online, what=f"{user}'s session")


async def test_direct_messages_reach_both_inboxes_once_in_order(pipeline: Pipeline) -> None:
    p = pipeline
    alice, bob, edge = uid("alice"), uid("bob"), uid("edge")
    async with edge_alive(p.publisher, p.settings, edge):
        await connect_on_edge(p, bob, edge)
        await _direct_messages(p, alice, bob, edge)


async def _direct_messages(p: Pipeline, alice: str, bob: str, edge: str) -> None:
    sent = [
        (await p.publisher.publish_personal_chat_sent(sender_id=alice, target_id=bob, payload=f"hi {n}")).envelope
        for n in range(20)
    ]
    ids = [e.payload.message_id for e in sent]  # type: ignore[union-attr]

    async def delivered() -> bool:
        return len(await inbox_of(p, bob)) == 20 and len(await inbox_of(p, alice)) == 20

    await wait_until(delivered, what="20 messages in both inboxes")
    for user in (alice, bob):
        rows = await inbox_of(p, user)
        assert [seq for seq, _, _ in rows] == list(range(1, 21))  # dense user seqs
        assert [mid for _, mid, _ in rows] == ids  # send order
        assert [cseq for _, _, cseq in rows] == list(range(1, 21))
    [conversation] = await p.store.list_conversations(bob)
    assert (conversation.unread, conversation.last_seq) == (20, 20)

    async def dispatched() -> list[MessageDispatched]:
        envelopes = await read_topic(p.settings, p.codec, p.catalog.edge_topic(edge).name)
        return [e.payload for e in envelopes if isinstance(e.payload, MessageDispatched)]

    await wait_until(lambda: _has(dispatched, 20), what="deliveries on the edge topic")
    deliveries = await dispatched()
    assert {(d.recipient_id, d.user_seq, d.message.message_id) for d in deliveries} == {
        (bob, seq, mid) for seq, mid, _ in await inbox_of(p, bob)
    }
    pushes = await read_topic(p.settings, p.codec, p.topic(PUSH))
    assert not [e for e in pushes if isinstance(e.payload, OfflinePushRequested) and e.payload.recipient_id == bob]


async def _has(fetch: object, n: int) -> bool:
    return len(await fetch()) >= n  # type: ignore[operator]


async def test_group_message_reaches_all_fifty_members_in_one_order(pipeline: Pipeline) -> None:
    p = pipeline
    members = [uid(f"m{i}") for i in range(50)]
    group_id = uid("group")
    await p.publisher.publish_many(
        [new_envelope(GroupCreated(group_id=group_id, name="fifty", owner_id=members[0], member_ids=tuple(members)))]
    )

    async def group_stored() -> bool:
        return len((await p.store.group_members([group_id]))[group_id]) == 50

    await wait_until(group_stored, what="the group in the store")
    senders = members[:3]
    for n in range(10):
        for sender in senders:
            await p.publisher.publish_personal_chat_sent(
                sender_id=sender, target_id=group_id, target_type="group", payload=f"{sender} says {n}"
            )

    async def everyone_has_all() -> bool:
        return all([len(await inbox_of(p, m)) == 30 for m in members])

    await wait_until(everyone_has_all, timeout=60, what="30 messages in 50 inboxes")
    orders = set()
    for member in members:
        rows = await inbox_of(p, member)
        assert [seq for seq, _, _ in rows] == list(range(2, 32))  # after the group's system message
        assert [cseq for _, _, cseq in rows] == list(range(2, 32))
        orders.add(tuple(mid for _, mid, _ in rows))
    assert len(orders) == 1  # the same per-conversation order for every member


async def test_blocked_sender_reaches_no_one_who_blocked_them(pipeline: Pipeline) -> None:
    p = pipeline
    alice, bob, carol, group_id = uid("alice"), uid("bob"), uid("carol"), uid("g")
    await p.publisher.publish_many(
        [
            new_envelope(UserBlocked(blocked_id=alice), user_id=carol),
            new_envelope(GroupCreated(group_id=group_id, name="trio", owner_id=alice, member_ids=(bob, carol))),
        ]
    )

    async def ready() -> bool:
        blocked = carol in (await p.store.blockers_of([alice]))[alice]
        return blocked and len((await p.store.group_members([group_id]))[group_id]) == 3

    await wait_until(ready, what="block and group stored")
    await p.publisher.publish_personal_chat_sent(sender_id=alice, target_id=carol, payload="direct")
    await p.publisher.publish_personal_chat_sent(
        sender_id=alice, target_id=group_id, target_type="group", payload="to the group"
    )
    await p.publisher.publish_personal_chat_sent(sender_id=bob, target_id=carol, payload="from bob")

    async def counts() -> list[int]:
        return [len(await inbox_of(p, user)) for user in (alice, bob, carol)]

    async def settled() -> bool:  # each inbox partition settles on its own
        return all(n >= want for n, want in zip(await counts(), [2, 2, 1], strict=True))

    await wait_until(settled, what="inboxes")
    assert await counts() == [2, 2, 1]  # bob: the group message and bob's own
    [(_, only, _)] = await inbox_of(p, carol)
    message = await p.store.get_message(only)
    assert message is not None and message.sender_id == bob


async def test_poison_and_unauthorised_records_go_to_dead_letter_and_the_stream_flows(pipeline: Pipeline) -> None:
    p = pipeline
    producer = AIOKafkaProducer(bootstrap_servers=p.settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        poison = await (await producer.send(p.topic(PERSONAL_CHAT), b"\x00\x00\x00\x00\x07garbage", key=b"dm:x:y"))
    finally:
        await producer.stop()
    outsider, owner, group_id = uid("mallory"), uid("owner"), uid("g")
    await p.publisher.publish_many(
        [new_envelope(GroupCreated(group_id=group_id, name="closed", owner_id=owner, member_ids=()))]
    )
    await wait_until(lambda: _group_exists(p, group_id), what="group stored")
    intrusion = await p.publisher.publish_personal_chat_sent(
        sender_id=outsider, target_id=group_id, target_type="group", payload="let me in"
    )
    alice, bob = uid("alice"), uid("bob")
    after = await p.publisher.publish_personal_chat_sent(sender_id=alice, target_id=bob, payload="still flowing")
    await wait_until(lambda: _inbox_has(p, bob, 1), what="the next message")

    async def dead_letters() -> list[RecordDeadLettered]:
        envelopes = await read_topic(p.settings, p.codec, p.topic(DEAD_LETTER))
        return [e.payload for e in envelopes if isinstance(e.payload, RecordDeadLettered)]

    await wait_until(lambda: _has(dead_letters, 2), what="two dead letters")
    by_code = {d.error_code: d for d in await dead_letters()}
    undecodable = by_code["undecodable_event"]
    assert (undecodable.source_topic, undecodable.source_partition, undecodable.source_offset) == (
        poison.topic,
        poison.partition,
        poison.offset,
    )
    assert undecodable.value == b"\x00\x00\x00\x00\x07garbage" and undecodable.stage == "persist"
    refused = by_code["not_a_member"]  # the fan-out runs in the persist pass: the original record is parked
    assert (refused.stage, refused.source_topic) == ("persist", p.topic(PERSONAL_CHAT))
    assert p.codec.decode(refused.value).id == intrusion.envelope.id
    assert await inbox_of(p, owner) == []
    assert intrusion.envelope.payload.message_id not in {m for _, m, _ in await inbox_of(p, outsider)}  # type: ignore[union-attr]
    assert after.envelope.payload.message_id == (await inbox_of(p, bob))[0][1]  # type: ignore[union-attr]


async def _group_exists(p: Pipeline, group_id: str) -> bool:
    return await p.store.get_group(group_id) is not None


async def _inbox_has(p: Pipeline, user: str, n: int) -> bool:
    return len(await inbox_of(p, user)) >= n


async def test_offline_recipient_gets_a_push(pipeline: Pipeline) -> None:
    p = pipeline
    alice, dave = uid("alice"), uid("dave")
    await p.publisher.publish_personal_chat_sent(sender_id=alice, target_id=dave, payload="are you there? " * 20)

    async def pushes() -> list[OfflinePushRequested]:
        envelopes = await read_topic(p.settings, p.codec, p.topic(PUSH))
        return [
            e.payload
            for e in envelopes
            if isinstance(e.payload, OfflinePushRequested) and e.payload.recipient_id == dave
        ]

    await wait_until(lambda: _has(pushes, 1), what="a push for dave")
    [push] = await pushes()
    assert (push.sender_id, push.user_seq, push.unread) == (alice, 1, 1)
    assert push.preview.startswith("are you there?") and len(push.preview) == 100


async def test_sessions_presence_and_silent_edge_expiry(pipeline: Pipeline) -> None:
    p = pipeline
    erin, edge = uid("erin"), uid("edge")
    await heartbeat(p.publisher, p.settings, edge, interval_ms=200)
    await connect_on_edge(p, erin, edge)

    async def presence() -> list[str]:
        envelopes = await read_topic(p.settings, p.codec, p.topic(PRESENCE))
        return [e.payload.status for e in envelopes if isinstance(e.payload, UserPresenceChanged) and e.user_id == erin]

    await wait_until(lambda: _has(presence, 1), what="erin online")
    # the edge stops sending heartbeats: after the timeout (1.5 s here) its sessions end
    await wait_until(lambda: _has(presence, 2), timeout=20, what="erin offline")
    assert await presence() == ["online", "offline"]
    assert (await p.store.sessions_of([erin]))[erin] == ()
    envelopes = await read_topic(p.settings, p.codec, p.topic(USER_EVENTS))
    forced = [e.payload for e in envelopes if isinstance(e.payload, UserDisconnected) and e.user_id == erin]
    assert [(d.forced, d.reason, d.edge_id) for d in forced] == [(True, "edge_timeout", edge)]
