"""When an edge is ready: the workers' group owns every partition of chat.user-events."""

from __future__ import annotations

import httpx
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from chat_events.api.app import create_app
from chat_events.api.edge import EdgeNode
from chat_events.api.worker_watch import sessions_stage_owned
from chat_events.settings import Settings

TOPIC = "chat.user-events"


def assignment(*owned: tuple[str, list[int]]) -> bytes:
    return bytes(ConsumerProtocolMemberAssignment(0, list(owned), b"").encode())


def test_ready_when_the_stable_group_owns_every_partition() -> None:
    members = [assignment((TOPIC, [0, 1]), ("chat.inbox", [0])), assignment((TOPIC, [2, 3]))]
    assert sessions_stage_owned("Stable", members, TOPIC, range(4))


def test_not_ready_before_the_group_has_settled() -> None:
    members = [assignment((TOPIC, [0, 1, 2, 3]))]
    for state in ("Empty", "PreparingRebalance", "CompletingRebalance", "Dead"):
        assert not sessions_stage_owned(state, members, TOPIC, range(4))
    assert not sessions_stage_owned("Stable", [], TOPIC, range(4))  # no worker at all


def test_not_ready_while_a_partition_of_user_events_has_no_owner() -> None:
    members = [assignment((TOPIC, [0, 1]), ("chat.inbox", [2, 3]))]
    assert not sessions_stage_owned("Stable", members, TOPIC, range(4))
    assert not sessions_stage_owned("Stable", [b"\x00garbage"], TOPIC, range(4))


def test_a_broker_that_reports_no_assignments_counts_a_stable_group_with_members() -> None:
    assert sessions_stage_owned("Stable", [b"", b""], TOPIC, range(4))  # the embedded broker


async def test_readyz_needs_the_edge_and_the_workers() -> None:
    node = EdgeNode(Settings())
    app = create_app(Settings(), edge=node)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge") as http:
        node.ready = True  # started, but no worker has joined yet
        answer = await http.get("/readyz")
        assert answer.status_code == 503
        assert answer.json() == {"ready": False, "edge_id": node.edge_id, "workers": False}
        node.workers.ready = True
        answer = await http.get("/readyz")
        assert answer.status_code == 200 and answer.json()["ready"] is True
        node.ready = False  # stopping
        assert (await http.get("/readyz")).status_code == 503
