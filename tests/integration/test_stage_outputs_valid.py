"""Every envelope a stage emits satisfies the event contract.

The worker sends its outputs without validating them again (``PublisherSink``: they are built
from records validated when first published, and validation was a quarter of the worker's CPU).
This test is what holds that promise: it drives every stage over a real store (the embedded
store, and real Apache Cassandra: each test in a keyspace of its own), through the store port, with
the events of a day in the life of a chat — connect, 1:1 and group messages, offline push,
blocks, rate limits, acks, disconnect, a silent edge — chaining each stage's outputs into the
next stage, and validates every output with the codec's full contract check.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from chat_events.codec import build_codec
from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.events.conversations import conversation_id_of
from chat_events.events.factory import new_envelope
from chat_events.events.types import (
    DeviceAcked,
    EdgeHeartbeat,
    Envelope,
    Event,
    GroupCreated,
    MessageDispatchedBatch,
    MessageFannedOutBatch,
    PersonalChatSent,
    UserBlocked,
    UserChatRateLimited,
    UserConnected,
    UserDisconnected,
)
from chat_events.kafka.connection import KafkaTarget
from chat_events.producers.partitioner import partition_for
from chat_events.producers.publisher import EventPublisher
from chat_events.settings import Settings
from chat_events.store.factory import open_store
from chat_events.store.port import MessageStore
from chat_events.streams.app import Stages, build_worker
from chat_events.streams.records import Incoming, Output, SourceRecord
from tests.real_engines import Engines

EDGE = "edge-a.1234abcd"
EDGE_B = "edge-b.5678abcd"
PARTITIONS = 2


@pytest.fixture(params=["embedded", "cassandra"])
async def stages(
    request: pytest.FixtureRequest, worker_engine: str, tmp_path: Path
) -> AsyncIterator[tuple[Stages, AvroEnvelopeCodec, MessageStore]]:
    # 2 partitions: alice is on partition 1; bob, carol and dave share partition 0 (murmur2), so
    # both single-recipient records and per-partition batches are emitted.
    store_settings: dict[str, object] = {}
    if request.param == "cassandra":
        # a keyspace per test: the tests reuse user and edge ids, and edge expiry reads every
        # active edge in the store
        engines: Engines = request.getfixturevalue("engines")
        store_settings = {
            "cassandra_contact_points": engines.cassandra_contact_point(),
            "cassandra_keyspace": engines.keyspace(f"{__name__}.{request.node.name}"),
        }
    settings = Settings(
        data_dir=tmp_path,
        edge_heartbeat_timeout_ms=100,
        fanout_write_max_members=3,
        topic_partitions=PARTITIONS,
        **store_settings,  # type: ignore[arg-type]
    )
    async with open_store(settings) as store:
        yield engine_stages(settings, worker_engine, store), build_codec(settings), store


def engine_stages(settings: Settings, engine: str, store: MessageStore) -> Stages:
    """The stage objects as ``engine`` wires them (nothing connects: neither is started)."""
    codec = build_codec(settings)
    target = KafkaTarget("127.0.0.1:1", embedded=True)
    publisher = EventPublisher(settings, target, codec)
    if engine == "faust":
        from chat_events.streams.faust_app import build_faust_worker

        return build_faust_worker(settings, target, store=store, publisher=publisher, codec=codec).stages
    return build_worker(settings, target, store=store, publisher=publisher, codec=codec).stages


class Checked:
    """Feeds envelopes to a stage, validating (by encoding) everything it emits."""

    def __init__(self, codec: AvroEnvelopeCodec) -> None:
        self.codec = codec
        self.offset = 0
        self.seen: dict[str, int] = {}

    def incoming(self, envelopes: Sequence[Envelope]) -> list[Incoming]:
        items = []
        for envelope in envelopes:
            self.offset += 1
            value = self.codec.encode(envelope)  # validate=True: the full contract check
            items.append(Incoming(SourceRecord("in", 0, self.offset, b"k", value), self.codec.decode(value)))
        return items

    def check(self, outputs: Sequence[Output]) -> list[Envelope]:
        for output in outputs:
            self.codec.encode(output.envelope)  # raises EventValidationError naming the field
            event = output.envelope.payload
            if isinstance(event, MessageFannedOutBatch | MessageDispatchedBatch):  # one partition per batch
                assert {partition_for(r.encode(), PARTITIONS) for r in event.recipient_ids} == {output.partition}
            self.seen[output.envelope.name] = self.seen.get(output.envelope.name, 0) + 1
        return [output.envelope for output in outputs]


def env(event: Event, user: str, session: str | None = None) -> Envelope:
    return new_envelope(event, user_id=user, session_id=session)


def message(sender: str, target: str, target_type: str = "user", text: str = "hi") -> Envelope:
    event = PersonalChatSent(
        message_id=str(uuid.uuid4()),
        sender_id=sender,
        target_id=target,
        payload=text,
        target_type=target_type,
        client_msg_id=f"n-{text}",
        mentions=(target,) if target_type == "group" else (),
    )
    return env(replace(event, conversation_id=conversation_id_of(event)), sender, "s-" + sender)


async def run(stage: object, checked: Checked, envelopes: Sequence[Envelope]) -> list[Envelope]:
    result = await stage.handle(checked.incoming(envelopes))  # type: ignore[attr-defined]
    assert not result.rejects, result.rejects
    return checked.check(result.outputs)


async def test_every_stage_output_passes_the_contract(
    stages: tuple[Stages, AvroEnvelopeCodec, MessageStore],
) -> None:
    s, codec, store = stages
    checked = Checked(codec)
    await run(
        s.sessions, checked, [new_envelope(EdgeHeartbeat(edge_id=EDGE, interval_ms=50, started_at_ms=1, sessions=0))]
    )
    connected = [env(UserConnected(edge_id=EDGE, device_id="d1"), u, f"s-{u}") for u in ("alice", "bob", "carol")]
    await run(s.sessions, checked, connected)  # presence changes
    await run(
        s.groups,
        checked,
        [env(GroupCreated(group_id="g1", name="G", owner_id="alice", member_ids=("alice", "bob", "dave")), "alice")],
    )
    await run(
        s.groups,
        checked,
        [env(GroupCreated(group_id="g2", name="G2", owner_id="alice", member_ids=("alice", "bob", "carol")), "alice")],
    )
    await run(
        s.groups,
        checked,
        [
            env(
                GroupCreated(group_id="big", name="B", owner_id="alice", member_ids=("alice", "bob", "carol", "dave")),
                "alice",
            )
        ],
    )

    sent = [
        message("alice", "bob"),  # alice and bob on different partitions: two messageFannedOut
        message("alice", "g1", "group", "to-group"),  # bob + dave (offline: push) batched
        message("alice", "g2", "group", "to-g2"),  # bob + carol, both online on EDGE: a dispatch batch
        message("bob", "big", "group"),
    ]
    stored = await run(s.persist, checked, sent)  # messageStored
    fanned = await run(s.fanout, checked, stored)  # messageFannedOut per member, room message for "big"
    await run(s.inbox, checked, [e for e in fanned if e.name != "messageStored"])  # dispatched + offline push

    # bob's phone signs in again on another edge: the older session ends, its edge gets a kick
    kicks = await run(s.sessions, checked, [env(UserConnected(edge_id=EDGE_B, device_id="d1"), "bob", "s-bob-2")])
    assert [(k.name, k.session_id, k.payload.reason, k.payload.code) for k in kicks] == [  # type: ignore[union-attr]
        ("userDisconnected", "s-bob", "conflict_login", 4007)
    ]
    assert [s.session_id for s in (await store.sessions_of(["bob"]))["bob"]] == ["s-bob-2"]
    assert await run(s.sessions, checked, [env(UserConnected(edge_id=EDGE_B, device_id="d1"), "bob", "s-bob-2")]) == []

    await run(s.sessions, checked, [env(UserBlocked(blocked_id="alice"), "bob")])
    await run(
        s.sessions,
        checked,
        [env(UserChatRateLimited(action="send", limit=20, window_ms=1000, retry_after_ms=50), "alice", "s-alice")],
    )
    await run(s.sessions, checked, [env(DeviceAcked(device_id="d1", seq=1, received_at_ms=1), "bob", "s-bob")])
    await run(
        s.sessions,
        checked,
        [
            env(
                UserDisconnected(reason="bye", code=1000, forced=False, edge_id=EDGE, device_id="d1"),
                "carol",
                "s-carol",
            )
        ],
    )
    expired: list[Envelope] = []
    dead: list[str] = []
    for _ in range(50):  # both edges go silent: forced userDisconnected for their sessions
        outputs, now_dead = await s.sessions.expire_silent_edges(lambda user: True)
        expired += checked.check(outputs)
        dead += now_dead
        if len(dead) == 2:
            break
        await asyncio.sleep(0.02)
    assert sorted(dead) == [EDGE, EDGE_B]
    assert sorted((e.user_id, e.session_id) for e in expired) == [("alice", "s-alice"), ("bob", "s-bob-2")]

    for name in (
        "messageStored",
        "messageFannedOut",
        "messageFannedOutBatch",
        "messageDispatched",
        "messageDispatchedBatch",
        "offlinePushRequested",
        "userPresenceChanged",
        "userDisconnected",
    ):
        assert checked.seen.get(name), f"no {name} was emitted: the scenario no longer covers it ({checked.seen})"


async def test_a_replayed_or_late_older_connect_never_kicks_the_newer_session(
    stages: tuple[Stages, AvroEnvelopeCodec, MessageStore],
) -> None:
    s, codec, store = stages
    checked = Checked(codec)
    older = env(UserConnected(edge_id=EDGE, device_id="phone"), "alice", "S1")
    await asyncio.sleep(0.01)  # envelope timestamps have millisecond resolution
    newer = env(UserConnected(edge_id=EDGE_B, device_id="phone"), "alice", "S2")

    def kicked(outputs: list[Envelope]) -> list[str | None]:
        return [e.session_id for e in outputs if isinstance(e.payload, UserDisconnected)]

    assert kicked(await run(s.sessions, checked, [older, newer])) == ["S1"]
    s.sessions.reset()  # a crash before the commit: both records are replayed
    assert kicked(await run(s.sessions, checked, [older, newer])) == ["S1"]  # never S2
    assert kicked(await run(s.sessions, checked, [older])) == ["S1"]  # arriving late: the old one goes
    assert [x.session_id for x in (await store.sessions_of(["alice"]))["alice"]] == ["S2"]
