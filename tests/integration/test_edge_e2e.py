"""The whole system over real sockets: uvicorn edges on real ports, a real worker process, the
real broker and the stack's store (read through the store port), driven by the Python client.

One worker and two edges (A, B) serve the module; each test uses its own users.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chat_events.client import ChatClient, ConnectionLost, Delivery, HttpApi
from chat_events.codec import build_codec
from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.events.types import UserDisconnected
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.settings import Settings
from chat_events.store.factory import open_store
from chat_events.store.port import MessageStore
from chat_events.topics import USER_EVENTS, TopicCatalog
from tests.conftest import make_settings
from tests.integration.edge_harness import EdgeProcess
from tests.integration.worker_harness import WorkerProcess, read_topic, wait_until


@dataclass
class System:
    settings: Settings
    worker: WorkerProcess
    a: EdgeProcess
    b: EdgeProcess
    store: MessageStore
    tmp: Path

    async def token(self, user: str) -> str:
        async with HttpApi(self.a.http) as api:
            return (await api.dev_token(user)).token

    async def client(self, edge: EdgeProcess, user: str, device: str = "d1", last_seq: int = 0) -> ChatClient:
        client = ChatClient(edge.http, token=await self.token(user), device_id=device, last_seq=last_seq)
        await client.connect()
        return client


def edge_settings(kafka_target: KafkaTarget, tmp: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "worker_app_id": f"w-{uuid.uuid4().hex[:8]}",
        "edge_heartbeat_timeout_ms": 2000,
        "edge_heartbeat_interval_ms": 300,
        "fanout_write_max_members": 60,
        "send_rate_per_s": 10_000.0,
        "send_burst": 10_000,
    }
    values.update(overrides)
    return make_settings(kafka_target, tmp, **values)


@pytest.fixture(scope="module")
async def system(kafka_target: KafkaTarget, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    async with running_system(kafka_target, tmp_path_factory.mktemp("edge")) as started:
        yield started


@contextlib.asynccontextmanager
async def running_system(kafka_target: KafkaTarget, tmp: Path, **overrides: object) -> AsyncIterator[System]:
    """A worker and two edges (``a``, ``b``) with :func:`edge_settings` (plus ``overrides``), for
    a module's fixture."""
    settings = edge_settings(kafka_target, tmp, **overrides)
    await ensure_topics(settings, kafka_target)
    worker = WorkerProcess(settings, tmp / "worker.log")
    a = EdgeProcess(settings, tmp / "edge-a.log", name="edge-a")
    b = EdgeProcess(settings, tmp / "edge-b.log", name="edge-b")
    worker.start()
    a.start()
    b.start()
    store = open_store(settings)
    await store.open()
    try:
        yield System(settings, worker, a, b, store, tmp)
    finally:
        await store.close()
        for process in (a, b):
            process.stop()
        worker.stop()


def uid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


async def receive_n(client: ChatClient, n: int, timeout: float = 30.0) -> list[Delivery]:  # noqa: ASYNC109
    out: list[Delivery] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            out.append(await client.receive())
    return out


async def test_a_message_from_edge_a_reaches_the_recipient_on_edge_b(system: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    async with await system.client(system.a, alice) as a, await system.client(system.b, bob) as b:
        result = await a.send("user", bob, "hello across edges")
        got = (await receive_n(b, 1))[0]
        assert got.message["message_id"] == result.message_id
        assert got.message["sender_id"] == alice and got.message["content"] == "hello across edges"
        assert got.user_seq == 1
        mine = (await receive_n(a, 1))[0]  # the sender's own inbox copy (their other devices)
        assert mine.message["message_id"] == result.message_id
        await asyncio.sleep(0.5)
        assert b.last_seq == 1  # delivered once


async def test_a_group_message_reaches_every_member_device_in_one_order(system: System) -> None:
    members = [uid(f"m{i}") for i in range(5)]
    async with HttpApi(system.a.http, token=await system.token(members[0])) as api:
        group = await api.create_group("team", members[1:])
    clients = []
    for i, member in enumerate(members):  # two devices per member, one on each edge
        clients.append(await system.client(system.a, member, "phone"))
        clients.append(await system.client(system.b if i % 2 else system.a, member, "laptop"))
    try:
        senders = [clients[0], clients[2]]

        async def burst(client: ChatClient, tag: str) -> None:
            for i in range(10):
                await client.send("group", group.group_id, f"{tag}-{i}")

        await asyncio.gather(burst(senders[0], "x"), burst(senders[1], "y"))
        orders = []
        for client in clients:
            got = await receive_n(client, 20)
            assert [d.user_seq for d in got] == list(range(1, 21))
            orders.append([d.message["message_id"] for d in got])
            assert [d.message["seq"] for d in got] == list(range(1, 21))
        assert all(order == orders[0] for order in orders)  # identical per-conversation order everywhere
        assert len(set(orders[0])) == 20
    finally:
        for client in clients:
            await client.close()


async def test_a_reconnecting_recipient_gets_all_500_missed_messages_once_in_order(system: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    bob_client = await system.client(system.b, bob)
    last_seq = bob_client.last_seq
    await bob_client.close()
    async with await system.client(system.a, alice) as a:
        for start in range(0, 500, 50):
            await asyncio.gather(*(a.send("user", bob, f"m{i}") for i in range(start, start + 50)))
    await wait_until(lambda: _inbox_at_least(system.store, bob, 500), timeout=60, what="500 messages in bob's inbox")
    async with await system.client(system.b, bob, last_seq=last_seq) as b:
        page = await b.sync(last_seq, 100)
        assert len(page.messages) == 100 and page.has_more  # paged
        got = await receive_n(b, 500)
        assert [d.user_seq for d in got] == list(range(1, 501))
        assert len({d.message["message_id"] for d in got}) == 500
        await asyncio.sleep(0.3)
        with pytest.raises(TimeoutError):
            await b.receive(timeout=0.3)  # nothing twice


async def _inbox_at_least(store: MessageStore, user: str, n: int) -> bool:
    return (await store.max_user_seqs([user])).get(user, 0) >= n


async def test_a_send_retried_after_a_lost_ack_is_one_message(system: System) -> None:
    from websockets.asyncio.client import connect

    alice, bob = uid("alice"), uid("bob")
    token = await system.token(alice)
    data = {"target_type": "user", "target_id": bob, "content": "once", "client_msg_id": "nonce-1"}
    frame = json.dumps({"type": "send", "request_id": 1, "data": data})
    async with connect(system.a.ws, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        await ws.recv()  # sign_in
        await ws.send(frame)
    # the ACK was lost with the socket; retry on the other edge with the same nonce
    async with await system.client(system.b, alice, "d2") as a:
        retried = await a.send("user", bob, "once", client_msg_id="nonce-1")
        again = await a.send("user", bob, "once", client_msg_id="nonce-1")
    assert retried.message_id == again.message_id
    conversation = retried.conversation_id
    await wait_until(lambda: _stored(system.store, conversation, 1), timeout=20, what="the message stored")
    await wait_until(lambda: _inbox_at_least(system.store, bob, 1), timeout=20, what="the message in bob's inbox")
    await asyncio.sleep(1.0)  # a second copy, had the retry made one, would be stored by now
    page = await system.store.conversation_messages(conversation, after_seq=0, limit=10)
    assert [m.message_id for m in page.items] == [retried.message_id]
    assert (await system.store.max_user_seqs([bob]))[bob] == 1


async def _stored(store: MessageStore, conversation: str, n: int) -> bool:
    return len((await store.conversation_messages(conversation, after_seq=0, limit=n + 1)).items) >= n


async def test_kill_9_of_an_edge_mid_stream_loses_nothing(system: System) -> None:
    edge_c = EdgeProcess(system.settings, system.tmp / "edge-c.log", name="edge-c")
    edge_c.start()
    alice, bob = uid("alice"), uid("bob")
    try:
        bob_client = await system.client(edge_c, bob)
        received: list[Delivery] = []

        async def reader() -> None:
            while True:
                received.append(await bob_client.receive())

        reading = asyncio.ensure_future(reader())
        async with await system.client(system.a, alice) as a:
            for i in range(100):
                await a.send("user", bob, f"k{i}")
                if i == 40:
                    edge_c.kill9()
        reading.cancel()
        await bob_client.close()

        async def offline() -> bool:
            return not (await system.store.sessions_of([bob])).get(bob)

        await wait_until(offline, timeout=20, what="bob offline after the edge's heartbeat timeout")
        await wait_until(lambda: _inbox_at_least(system.store, bob, 100), timeout=30, what="all 100 stored")
        last = max((d.user_seq for d in received), default=0)
        async with await system.client(system.b, bob, last_seq=last) as b:
            rest = await receive_n(b, 100 - last)
        seqs = [d.user_seq for d in received if d.user_seq <= last] + [d.user_seq for d in rest]
        assert sorted(set(seqs)) == list(range(1, 101))
        assert [d.user_seq for d in rest] == list(range(last + 1, 101))
    finally:
        edge_c.stop()


async def test_the_same_device_signing_in_on_another_edge_kicks_the_older_socket(system: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    old = await system.client(system.a, alice, "phone")
    laptop = await system.client(system.a, alice, "laptop")  # another device: never kicked
    new = await system.client(system.b, alice, "phone")
    try:
        with pytest.raises(ConnectionLost) as lost:
            await old.receive(timeout=15)
        assert lost.value.close_code == 4007 and "signed in again" in str(lost.value)
        sessions = (await system.store.sessions_of([alice]))[alice]
        assert {s.device_id for s in sessions} == {"phone", "laptop"} and len(sessions) == 2
        async with await system.client(system.a, bob) as b:
            await b.send("user", alice, "still here?")
            assert (await receive_n(new, 1))[0].message["content"] == "still here?"
            assert (await receive_n(laptop, 1))[0].message["content"] == "still here?"
        codec = build_codec(system.settings)
        topic = TopicCatalog(system.settings).resolve(USER_EVENTS).name
        await wait_until(
            lambda: _forced_conflict_disconnects(system.settings, codec, topic, alice),
            what="the kick's userDisconnected",
        )
    finally:
        for client in (old, laptop, new):
            await client.close()


async def _forced_conflict_disconnects(settings: Settings, codec: AvroEnvelopeCodec, topic: str, user: str) -> bool:
    for envelope in await read_topic(settings, codec, topic):
        event = envelope.payload
        if envelope.user_id == user and isinstance(event, UserDisconnected) and event.reason == "conflict_login":
            return bool(event.forced and event.code == 4007 and event.device_id == "phone")
    return False
