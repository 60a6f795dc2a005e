"""Scale-out by partitions stays correct (issue 12): two worker processes in one consumer group
and two edges, on both stacks, driven by real clients over real sockets.

Users are spread over both edges (some with a device on each), in 1:1 pairs across the edges
and one group with members on both; every send goes out concurrently. The users are picked so
their conversations and inboxes cover every partition, so both workers must do persist and
inbox work. After each run every device holds each of its user's messages once, in user seq
order and per conversation in seq order; no socket got a user seq pushed twice; the store's
seqs are dense per conversation and per user; every send was answered once. Then the same
with one edge killed mid-stream (its devices resume on the other edge, unanswered sends are
retried with their nonce) and with one worker killed mid-stream (the other takes over its
partitions).

Who owns which partitions is read from each worker's own log lines ("assigned partitions"),
which both brokers produce; on real Kafka the group coordinator's view (DescribeGroups) must
agree. The embedded broker reports no member assignments.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from chat_events.api.worker_watch import describe_group
from chat_events.client import HttpApi
from chat_events.events.conversations import direct_conversation_id
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.producers.partitioner import partition_for
from chat_events.settings import Settings
from chat_events.store.factory import open_store
from chat_events.store.port import MessageStore
from chat_events.topics import GROUP_EVENTS, INBOX, PERSONAL_CHAT, USER_EVENTS, TopicCatalog
from tests.conftest import make_settings
from tests.integration.edge_harness import EdgeProcess
from tests.integration.scale_traffic import (
    Device,
    Ledger,
    Send,
    assignments,
    check_device,
    check_store,
    nonce,
    send_all,
    token_of,
)
from tests.integration.worker_harness import WorkerProcess, wait_until

PARTITIONS = 4
PAIRS = 6
PAIR_MESSAGES = 30
GROUP_SENDERS = 3
GROUP_MESSAGES = 20


@dataclass
class Cluster:
    settings: Settings
    target: KafkaTarget
    tmp: Path
    workers: list[WorkerProcess]
    logs: list[Path]
    edges: list[EdgeProcess]
    store: MessageStore

    def stage_topics(self) -> set[str]:
        catalog = TopicCatalog(self.settings)
        return {catalog.resolve(spec).name for spec in (PERSONAL_CHAT, INBOX, USER_EVENTS, GROUP_EVENTS)}

    def held(self, i: int) -> dict[str, set[int]]:
        return assignments(self.logs[i])

    def alive(self) -> list[int]:
        return [i for i, w in enumerate(self.workers) if w.proc is not None and w.proc.poll() is None]

    async def shared(self) -> bool:
        """Every live worker holds some partitions of every stage topic, and together all of
        them, each once (their logs); on real Kafka the coordinator says the same."""
        alive = self.alive()
        all_partitions = set(range(PARTITIONS))
        for topic in self.stage_topics():
            held = [self.held(i).get(topic, set()) for i in alive]
            if (
                any(not h for h in held)
                or sum(len(h) for h in held) != PARTITIONS
                or set().union(*held) != all_partitions
            ):
                return False
        if self.target.embedded:  # the embedded broker does not report member assignments
            return True
        view = await broker_view(self.settings)
        if view is None:
            return False
        logged = sorted(sorted((t, sorted(p)) for t, p in self.held(i).items()) for i in alive)
        reported = sorted(
            sorted((t, sorted(p)) for t, p in member.items() if t in self.stage_topics()) for member in view
        )
        return logged == reported

    async def two_workers(self) -> None:
        """Restart a worker an earlier test killed, then wait until both share the partitions."""
        for i, worker in enumerate(self.workers):
            if i not in self.alive():
                worker.start()
        await wait_until(self.shared, timeout=90, what="both workers sharing the partitions")

    def views(self) -> list[dict[str, set[int]]]:
        return [self.held(i) for i in range(len(self.workers))]


async def broker_view(settings: Settings) -> list[dict[str, set[int]]] | None:
    """Each member's assignment per the group coordinator (real Kafka); None unless the group
    is stable with every member's assignment reported."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        state, raw = await describe_group(admin, settings.worker_app_id)
    finally:
        await admin.close()
    if state != "Stable" or not raw or not all(raw):
        return None
    members = []
    for blob in raw:
        decoded = ConsumerProtocolMemberAssignment.decode(blob)
        members.append({name: set(numbers) for name, numbers in decoded.assignment})
    return members


@pytest.fixture(scope="module")
async def cluster(kafka_target: KafkaTarget, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    tmp = tmp_path_factory.mktemp("scale")
    settings = make_settings(
        kafka_target,
        tmp,
        worker_app_id=f"w-{uuid.uuid4().hex[:8]}",
        topic_partitions=PARTITIONS,
        worker_session_timeout_s=6.0,
        worker_rebalance_timeout_s=3.0,
        edge_heartbeat_interval_ms=300,
        edge_heartbeat_timeout_ms=4000,
        send_rate_per_s=10_000.0,
        send_burst=10_000,
    )
    await ensure_topics(settings, kafka_target)
    logs = [tmp / "worker-1.log", tmp / "worker-2.log"]
    workers = [WorkerProcess(settings, log, log_level="INFO") for log in logs]
    edges = [
        EdgeProcess(settings, tmp / "edge-a.log", name="edge-a"),
        EdgeProcess(settings, tmp / "edge-b.log", name="edge-b"),
    ]
    store = open_store(settings)
    await store.open()
    system = Cluster(settings, kafka_target, tmp, workers, logs, edges, store)
    try:
        for worker in workers:
            worker.start()
        for edge in edges:
            edge.start()
        yield system
    finally:
        await store.close()
        for edge in system.edges:
            edge.stop()
        for worker in workers:
            worker.stop()


def user_on(partition: int, tag: str, *, with_conversation: tuple[str, int] | None = None) -> str:
    """A fresh user id whose inbox is on ``partition`` (and, given ``(peer, p)``, whose 1:1
    conversation with ``peer`` is on partition ``p``)."""
    while True:
        user = f"{tag}-{uuid.uuid4().hex[:6]}"
        if partition_for(user.encode(), PARTITIONS) != partition:
            continue
        if with_conversation is not None:
            peer, p = with_conversation
            if partition_for(direct_conversation_id(user, peer).encode(), PARTITIONS) != p:
                continue
        return user


@dataclass
class Traffic:
    devices: list[Device]
    sends: list[Send]
    audience: dict[str, set[str]]
    ledger: Ledger


async def plan(cluster: Cluster, tag: str) -> Traffic:
    """12 users, even ones on edge A and odd ones on B, the first four with a second device on
    the other edge; pairs (0,1), (2,3), ... across the edges; a group of users 0, 1, 4, 5, 8, 9.
    Inboxes and 1:1 conversations cover every partition."""
    a, b = cluster.edges
    users: list[str] = []
    for k in range(PAIRS):
        first = user_on((2 * k) % PARTITIONS, f"{tag}{2 * k}")
        users += [
            first,
            user_on((2 * k + 1) % PARTITIONS, f"{tag}{2 * k + 1}", with_conversation=(first, k % PARTITIONS)),
        ]
    phones = [Device(user, "phone", a if i % 2 == 0 else b) for i, user in enumerate(users)]
    laptops = [Device(user, "laptop", b if i % 2 == 0 else a) for i, user in enumerate(users[:4])]
    members = [users[i] for i in (0, 1, 4, 5, 8, 9)]
    async with HttpApi(a.http, token=await token_of(a, members[0])) as api:
        group = await api.create_group(f"{tag}-team", members[1:])
    audience = {group.group_id: set(members)}
    sends: list[Send] = []
    for k in range(PAIRS):
        x, y = 2 * k, 2 * k + 1
        audience[users[x]], audience[users[y]] = {users[x]}, {users[y]}
        for i in range(PAIR_MESSAGES):
            sender, target = (x, y) if i % 2 == 0 else (y, x)
            device = laptops[sender] if sender < len(laptops) and i % 4 < 2 else phones[sender]
            sends.append(Send(device, "user", users[target], f"{tag} {sender}->{target} #{i}", nonce()))
    group_senders = [laptops[0], phones[5], phones[8]][:GROUP_SENDERS]
    for i in range(GROUP_MESSAGES):
        for device in group_senders:
            sends.append(Send(device, "group", group.group_id, f"{tag} group from {device.user} #{i}", nonce()))
    devices = phones + laptops
    await asyncio.gather(*(device.connect(device.edge) for device in devices))
    return Traffic(devices, sends, audience, Ledger())


async def delivered(traffic: Traffic) -> bool:
    expected = traffic.ledger.expected_by_user()
    return all(len(d.got) >= len(expected[d.user]) for d in traffic.devices)


async def check(cluster: Cluster, traffic: Traffic) -> None:
    """Once every device has its messages: nothing more comes, and everything holds."""
    ledger = traffic.ledger
    assert ledger.answered == len(traffic.sends) == len(ledger.conversation_of)  # each send answered, once
    for target, members in traffic.audience.items():  # a group's first message: its groupCreated system message
        if await cluster.store.get_group(target) is not None:
            [created] = (await cluster.store.conversation_messages(target, after_seq=0, limit=1)).items
            assert created.kind == "system", created
            ledger.conversation_of[created.message_id] = target
            ledger.recipients_of[created.message_id] = set(members)
    await wait_until(lambda: delivered(traffic), timeout=90, what="every message on every device")
    await asyncio.sleep(1.0)  # a duplicate or a stray message would arrive by now
    expected = ledger.expected_by_user()
    for device in traffic.devices:
        check_device(device, expected[device.user], ledger)
    await check_store(cluster.store, ledger)


async def close_all(traffic: Traffic) -> None:
    await asyncio.gather(*(device.close() for device in traffic.devices))


async def test_two_workers_and_two_edges_share_the_work(cluster: Cluster) -> None:
    await cluster.two_workers()
    traffic = await plan(cluster, "s")
    try:
        await send_all(traffic.sends, traffic.audience, traffic.ledger)
        await check(cluster, traffic)
        for edge in cluster.edges:  # both edges pushed messages to their devices
            pushed = sum(len(s) for d in traffic.devices if d.edge is edge for s in d.all_sockets())
            assert pushed > 0, f"{edge.name} pushed nothing"
        assert await cluster.shared(), cluster.views()  # still both, nothing moved meanwhile
    finally:
        await close_all(traffic)


async def test_an_edge_killed_mid_stream_its_devices_resume_on_the_other(cluster: Cluster) -> None:
    await cluster.two_workers()
    traffic = await plan(cluster, "e")
    a, b = cluster.edges
    sending = asyncio.ensure_future(send_all(traffic.sends, traffic.audience, traffic.ledger))
    try:
        await wait_until(_answered(traffic, len(traffic.sends) // 3), timeout=60, what="a third of the sends")
        b.kill9()
        assert not sending.done(), "the kill must land mid-stream"
        await asyncio.gather(*(d.move_to(a) for d in traffic.devices if d.edge is b))
        await sending
        assert traffic.ledger.retried > 0  # sends from the dead edge's devices went again, from edge A
        await check(cluster, traffic)
    finally:
        sending.cancel()
        await close_all(traffic)
        b.stop()
        cluster.edges[1] = EdgeProcess(cluster.settings, cluster.tmp / "edge-b2.log", name="edge-b2")
        cluster.edges[1].start()


async def test_a_worker_killed_mid_stream_the_other_takes_over(cluster: Cluster) -> None:
    await cluster.two_workers()
    traffic = await plan(cluster, "k")
    sending = asyncio.ensure_future(send_all(traffic.sends, traffic.audience, traffic.ledger))
    try:
        await wait_until(_answered(traffic, len(traffic.sends) // 3), timeout=60, what="a third of the sends")
        cluster.workers[1].kill9()
        assert not sending.done(), "the kill must land mid-stream"
        await wait_until(cluster.shared, timeout=90, what="the surviving worker holding every partition")
        assert cluster.alive() == [0]
        assert all(len(p) == PARTITIONS for p in cluster.held(0).values()), cluster.held(0)
        await sending
        await check(cluster, traffic)
    finally:
        sending.cancel()
        await close_all(traffic)


def _answered(traffic: Traffic, n: int) -> Callable[[], Awaitable[bool]]:
    async def answered() -> bool:
        return traffic.ledger.answered >= n

    return answered
