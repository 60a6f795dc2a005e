"""Issue 15, items 7 and 8 through the real edges, worker, broker and store: a conversation's
seq range over HTTP (``from_seq``/``to_seq``), and a device's stored sync progress (``ack`` ->
``deviceAcked`` -> the sessions stage -> the sign-in answer's ``acked_seq`` and ``sync``
without ``seq``).

One worker and two edges serve the module; each test uses its own users.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from chat_events.client import ChatClient, ChatError, HttpApi
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.store.factory import open_store
from chat_events.store.port import MessageStore
from tests.integration.edge_harness import EdgeProcess
from tests.integration.test_edge_e2e import System, edge_settings, receive_n, uid
from tests.integration.worker_harness import WorkerProcess, wait_until


@pytest.fixture(scope="module")
async def system(kafka_target: KafkaTarget, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    tmp = tmp_path_factory.mktemp("sync")
    settings = edge_settings(kafka_target, tmp)
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


async def _inbox_at_least(store: MessageStore, user: str, n: int) -> bool:
    return (await store.max_user_seqs([user])).get(user, 0) >= n


async def _progress(store: MessageStore, user: str, device: str) -> int:
    found = (await store.device_progress([(user, device)])).get((user, device))
    return found.acked_seq if found is not None else 0


async def _dm_with(system: System, n: int) -> tuple[str, str, str]:
    """alice sends bob ``n`` messages; returns (alice, bob, conversation id) once bob's inbox has them."""
    alice, bob = uid("alice"), uid("bob")
    async with await system.client(system.a, alice) as a:
        conversation = ""
        for i in range(n):
            conversation = (await a.send("user", bob, f"m{i + 1}")).conversation_id
    await wait_until(lambda: _inbox_at_least(system.store, bob, n), timeout=60, what=f"{n} messages for bob")
    return alice, bob, conversation


# --- item 7: a seq range of one conversation ----------------------------------------------


async def test_a_seq_range_is_inclusive_ascending_and_paged_with_has_more(system: System) -> None:
    _, bob, conversation = await _dm_with(system, 25)
    async with HttpApi(system.a.http, token=await system.token(bob)) as api:
        first = await api.history_range(conversation, 5, 20, limit=10)
        assert [m["seq"] for m in first.messages] == list(range(5, 15))
        assert first.has_more and first.next_from_seq == 15
        rest = await api.history_range(conversation, first.next_from_seq, 20, limit=10)
        assert [m["seq"] for m in rest.messages] == list(range(15, 21))
        assert not rest.has_more and rest.next_from_seq is None
        exact = await api.history_range(conversation, 21, 25, limit=5)  # messages follow, the range ends
        assert [m["seq"] for m in exact.messages] == [21, 22, 23, 24, 25] and not exact.has_more
        tail = await api.history_range(conversation, 24, 10**15)
        assert [m["seq"] for m in tail.messages] == [24, 25] and not tail.has_more
        assert (await api.history_range(conversation, 26, 40)).messages == ()
        [one] = (await api.history_range(conversation, 7, 7)).messages
        assert one["seq"] == 7 and one["content"] == "m7" and one["conversation_id"] == conversation


async def test_a_seq_range_is_for_members_only(system: System) -> None:
    alice, _, conversation = await _dm_with(system, 2)
    carol, dave = uid("carol"), uid("dave")
    async with HttpApi(system.a.http, token=await system.token(alice)) as api:
        group = await api.create_group("team", [dave])
    missing = "dm:" + ":".join(sorted([alice, uid("zed")]))  # alice is in it, carol is not; it has no message
    async with HttpApi(system.b.http, token=await system.token(carol)) as api:
        for target in (conversation, missing, group.group_id, f"g-{uid('none')}"):
            with pytest.raises(ChatError) as refused:
                await api.history_range(target, 1, 10)
            assert refused.value.code == 8 and refused.value.data["http_status"] == 403, target
    async with HttpApi(system.b.http, token=await system.token(dave)) as api:  # a member of the group
        kinds = [m["kind"] for m in (await api.history_range(group.group_id, 1, 10)).messages]
        assert kinds == ["system"]  # only the group's groupCreated system message


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from_seq": 9, "to_seq": 8}, "from_seq: must be at most to_seq (8), got 9"),
        ({"from_seq": 3}, "to_seq: is required with from_seq"),
        ({"to_seq": 3}, "from_seq: is required with to_seq"),
        ({"from_seq": 1, "to_seq": 3, "after_seq": 0}, "after_seq: cannot be combined with from_seq/to_seq"),
        ({"from_seq": 1, "to_seq": 3, "limit": 0}, "limit: must be at least 1"),
        ({"from_seq": 1, "to_seq": 3, "limit": 201}, "limit: must be at most 200"),
        ({"from_seq": -1, "to_seq": 3}, "from_seq: must be at least 0"),
        ({"from_seq": 1, "to_seq": 2**63}, "to_seq: must be at most 9223372036854775807"),
        ({"from_seq": "x", "to_seq": 3}, "from_seq: must be an integer, got a string"),
    ],
)
async def test_a_bad_seq_range_is_refused_with_code_5(system: System, query: dict[str, Any], message: str) -> None:
    alice, bob = uid("alice"), uid("bob")
    conversation = "dm:" + ":".join(sorted([alice, bob]))
    headers = {"Authorization": f"Bearer {await system.token(alice)}"}
    async with httpx.AsyncClient(base_url=system.a.http) as http:
        response = await http.get(f"/v1/conversations/{conversation}/messages", params=query, headers=headers)
    assert response.status_code == 422
    assert response.json() == {"code": 5, "message": message}


# --- item 8: a device's stored sync progress ----------------------------------------------


async def _raw_device(system: System, user: str, device: str) -> tuple[ClientConnection, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {await system.token(user)}", "X-Device-Id": device}
    ws = await connect(system.b.ws, additional_headers=headers)
    sign_in = json.loads(await ws.recv())
    assert sign_in["type"] == "sign_in" and sign_in["code"] == 0, sign_in
    return ws, sign_in["data"]


async def _session_ended(store: MessageStore, user: str, session_id: str) -> bool:
    return all(s.session_id != session_id for s in (await store.sessions_of([user]))[user])


async def test_a_device_resumes_from_its_stored_progress_and_it_never_goes_back(system: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    async with await system.client(system.a, alice) as a:
        async with await system.client(system.a, bob, "phone") as phone:
            for i in range(5):
                await a.send("user", bob, f"m{i + 1}")
            assert [d.user_seq for d in await receive_n(phone, 5)] == [1, 2, 3, 4, 5]
        # closed: the client acked what it delivered; the sessions stage stores it
        await wait_until(lambda: _progress_is(system.store, bob, "phone", 5), timeout=30, what="phone's progress 5")
        for i in range(5, 8):
            await a.send("user", bob, f"m{i + 1}")
    await wait_until(lambda: _inbox_at_least(system.store, bob, 8), timeout=30, what="8 messages for bob")

    # signing in again without a seq of its own, on the other edge: it resumes after 5
    ws, data = await _raw_device(system, bob, "phone")
    assert data["acked_seq"] == 5 and data["last_user_seq"] == 8
    await ws.send(json.dumps({"type": "sync", "request_id": 1, "data": {"limit": 2}}))
    page = json.loads(await ws.recv())
    assert page["code"] == 0 and page["data"]["after_seq"] == 5
    assert [m["user_seq"] for m in page["data"]["messages"]] == [6, 7] and page["data"]["has_more"]
    await ws.send(json.dumps({"type": "ack", "data": {"seq": 7}}))
    await ws.send(json.dumps({"type": "sync", "request_id": 2, "data": {}}))  # after what this socket acked
    page = json.loads(await ws.recv())
    assert page["data"]["after_seq"] == 7 and [m["user_seq"] for m in page["data"]["messages"]] == [8]
    await ws.send(json.dumps({"type": "sync", "request_id": 3, "data": {"seq": 0, "limit": 3}}))  # a seq given wins
    page = json.loads(await ws.recv())
    assert page["data"]["after_seq"] == 0 and [m["user_seq"] for m in page["data"]["messages"]] == [1, 2, 3]
    await ws.close()
    await wait_until(lambda: _progress_is(system.store, bob, "phone", 7), timeout=30, what="phone's progress 7")

    # an older ack from a later socket of the same device changes nothing
    ws, data = await _raw_device(system, bob, "phone")
    assert data["acked_seq"] == 7
    await ws.send(json.dumps({"type": "ack", "data": {"seq": 2}}))
    await ws.close()  # the edge publishes the ack, then the disconnect, on the user's partition
    await wait_until(lambda: _session_ended(system.store, bob, data["session_id"]), timeout=30, what="session end")
    assert await _progress(system.store, bob, "phone") == 7

    # the client resuming from the server's progress gets what follows it, once
    async with ChatClient(system.b.http, token=await system.token(bob), device_id="phone", last_seq=None) as again:
        assert again.sign_in_info.acked_seq == 7
        assert [d.user_seq for d in await receive_n(again, 1)] == [8]
        assert again.last_seq == 8


async def _progress_is(store: MessageStore, user: str, device: str, seq: int) -> bool:
    return await _progress(store, user, device) == seq


async def test_each_device_has_its_own_progress(system: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    async with await system.client(system.a, alice) as a:
        for i in range(6):
            await a.send("user", bob, f"m{i + 1}")
    await wait_until(lambda: _inbox_at_least(system.store, bob, 6), timeout=30, what="6 messages for bob")
    phone, _ = await _raw_device(system, bob, "phone")
    laptop, _ = await _raw_device(system, bob, "laptop")
    await phone.send(json.dumps({"type": "ack", "data": {"seq": 5}}))
    await laptop.send(json.dumps({"type": "ack", "data": {"seq": 2}}))
    await phone.close()
    await laptop.close()
    await wait_until(lambda: _progress_is(system.store, bob, "phone", 5), timeout=30, what="phone's progress 5")
    await wait_until(lambda: _progress_is(system.store, bob, "laptop", 2), timeout=30, what="laptop's progress 2")
    tablet, data = await _raw_device(system, bob, "tablet")  # never acked: from the start
    assert data["acked_seq"] == 0
    await tablet.close()
    async with (
        ChatClient(system.a.http, token=await system.token(bob), device_id="laptop", last_seq=None) as laptop_again,
        ChatClient(system.a.http, token=await system.token(bob), device_id="phone", last_seq=None) as phone_again,
    ):
        assert [d.user_seq for d in await receive_n(laptop_again, 4)] == [3, 4, 5, 6]
        assert [d.user_seq for d in await receive_n(phone_again, 1)] == [6]
        assert (laptop_again.sign_in_info.acked_seq, phone_again.sign_in_info.acked_seq) == (2, 5)
