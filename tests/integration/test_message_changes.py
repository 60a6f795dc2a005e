"""Changing sent messages through the real edges, broker, worker and store (issue 16, items 1 and
2): edit, recall, delete for me and for everyone, reactions and replies, each with the other
member's devices watching; a device offline during the changes syncs to the final state; edits
stay in order with sends; refusals get their codes and nothing reaches Kafka; a kill -9 of the
worker during a stream of edits loses and duplicates nothing. One worker and two edges serve the
module, with a short recall window (RECALL_WINDOW_S) so "too late" can be shown."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chat_events.client import ChatClient, ChatError, Delivery, HttpApi
from chat_events.codec import build_codec
from chat_events.events.conversations import direct_conversation_id
from chat_events.kafka.connection import KafkaTarget
from chat_events.topics import PERSONAL_CHAT, TopicCatalog
from tests.integration.test_edge_e2e import System, receive_n, running_system, uid
from tests.integration.worker_harness import read_topic, wait_until

RECALL_WINDOW_S = 6


@pytest.fixture(scope="module")
async def system(kafka_target: KafkaTarget, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    tmp = tmp_path_factory.mktemp("changes")
    async with running_system(kafka_target, tmp, recall_window_s=RECALL_WINDOW_S, edit_window_s=600) as started:
        yield started


async def api(system: System, user: str) -> HttpApi:
    return HttpApi(system.a.http, token=await system.token(user))


async def history(system: System, user: str, conversation_id: str) -> dict[str, dict[str, Any]]:
    """The conversation's entries as ``user`` reads them now, by message id."""
    async with await api(system, user) as http:
        page = await http.history(conversation_id, after_seq=0, limit=200)
    return {m["message_id"]: m for m in page.messages}


def fold(state: dict[str, dict[str, Any]], delivery: Delivery) -> None:
    """What a client does with a delivery: keep messages, apply change entries to them."""
    m = delivery.message
    kind = m["kind"]
    if kind in ("message", "system"):
        state[m["message_id"]] = {"content": m["content"], "status": m["status"], "reactions": {}}
        return
    target = state.get(m["relates_to"])
    if target is None:
        return
    if kind == "edit":
        target.update(content=m["content"], status="edited")
    elif kind in ("recall", "delete"):
        target.update(content="", status="recalled" if kind == "recall" else "deleted")
    elif kind == "delete_for_me":
        target["hidden"] = True
    elif kind == "reaction_add":
        target["reactions"][m["content"]] = target["reactions"].get(m["content"], 0) + 1
    elif kind == "reaction_remove":
        target["reactions"][m["content"]] -= 1


async def next_of(client: ChatClient, kind: str, timeout: float = 30.0) -> Delivery:  # noqa: ASYNC109
    """The next delivery of ``kind`` (``message``, ``edit``, ...), skipping others (a user's
    devices get their own sends and changes too)."""
    async with asyncio.timeout(timeout):
        while True:
            delivery = await client.receive()
            if delivery.message["kind"] == kind:
                return delivery


async def kinds_until(client: ChatClient, content: str, timeout: float = 30.0) -> list[str]:  # noqa: ASYNC109
    """The kinds of everything ``client`` receives up to the message with ``content``."""
    kinds = []
    async with asyncio.timeout(timeout):
        while True:
            delivery = await client.receive()
            kinds.append(delivery.message["kind"])
            if delivery.message["kind"] == "message" and delivery.content == content:
                return kinds


async def test_edit_react_recall_and_delete_reach_every_device_and_history(system: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    conversation = direct_conversation_id(alice, bob)
    a1 = await system.client(system.a, alice, "d1")
    a2 = await system.client(system.b, alice, "d2")
    b1 = await system.client(system.b, bob, "d1")
    try:
        sent = await a1.send("user", bob, "see you at 7")
        other = await a1.send("user", bob, "and bring snacks")
        for _ in range(2):  # stored (a client changes messages it has seen with their seq)
            await next_of(a1, "message")
        assert (await a1.edit(sent.message_id, "see you at 8"))["kind"] == "edit"
        for device in (b1, a2, a1):  # the other member, the sender's other device and the sending one
            edited = await next_of(device, "edit")
            assert edited.message["relates_to"] == sent.message_id and edited.content == "see you at 8"
        await b1.react(sent.message_id, "\U0001f44d")
        for device in (a1, a2):
            reaction = await next_of(device, "reaction_add")
            assert (reaction.content, reaction.sender_id) == ("\U0001f44d", bob)
        reply = await b1.send("user", alice, "ok!", reply_to=sent.message_id)
        answered = await next_of(a1, "message")
        assert answered.message["message_id"] == reply.message_id and answered.message["reply_to"] == sent.message_id

        seen = await history(system, bob, conversation)
        assert seen[sent.message_id]["content"] == "see you at 8"
        assert seen[sent.message_id]["status"] == "edited" and seen[sent.message_id]["edited_at_ms"] > 0
        assert seen[sent.message_id]["reactions"] == [{"emoji": "\U0001f44d", "count": 1, "user_ids": [bob]}]
        assert seen[reply.message_id]["reply_to"] == sent.message_id

        await a1.recall(sent.message_id)
        for device in (b1, a2):
            recalled = await next_of(device, "recall")
            assert recalled.message["relates_to"] == sent.message_id
        await b1.delete(other.message_id, scope="me")
        hidden = await next_of(b1, "delete_for_me")
        assert hidden.message["relates_to"] == other.message_id

        seen = await history(system, bob, conversation)
        assert (seen[sent.message_id]["status"], seen[sent.message_id]["content"]) == ("recalled", "")
        assert all(m["content"] == "" for m in seen.values() if m["kind"] == "edit")  # the text is gone everywhere
        assert seen[other.message_id].get("hidden") is True and seen[other.message_id]["content"] == ""
        theirs = await history(system, alice, conversation)
        assert theirs[other.message_id]["content"] == "and bring snacks"  # deleted for bob only
        assert not theirs[other.message_id].get("hidden")
        await b1.send("user", alice, "marker")  # alice's devices are never told of bob's own deletion
        assert "delete_for_me" not in await kinds_until(a2, "marker")
    finally:
        for client in (a1, a2, b1):
            await client.close()


async def test_a_device_offline_during_the_changes_syncs_to_the_final_state(system: System) -> None:
    alice, bob, carol = uid("alice"), uid("bob"), uid("carol")
    async with await api(system, alice) as http:
        group = await http.create_group("trip", [bob, carol])
    a1 = await system.client(system.a, alice)
    c1 = await system.client(system.b, carol)
    try:
        m1 = await a1.send("group", group.group_id, "one")
        m2 = await a1.send("group", group.group_id, "two")
        m3 = await a1.send("group", group.group_id, "three")
        await receive_n(c1, 3)
        # bob is offline for all of this
        await a1.edit(m1.message_id, "one, edited")
        await a1.edit(m1.message_id, "one, edited twice")
        await a1.recall(m2.message_id)
        await a1.delete(m3.message_id, scope="everyone")
        await c1.react(m1.message_id, "\U0001f389")
        await next_of(a1, "reaction_add")  # carol's reaction: everything before it is stored
        b1 = await system.client(system.a, bob)
        try:
            state: dict[str, dict[str, Any]] = {}
            async with asyncio.timeout(30):  # from sync: the group's system message, 3 messages, 5 changes
                while True:
                    delivery = await b1.receive()
                    fold(state, delivery)
                    if delivery.message["kind"] == "reaction_add":
                        break
        finally:
            await b1.close()
        assert state[m1.message_id] == {
            "content": "one, edited twice",
            "status": "edited",
            "reactions": {"\U0001f389": 1},
        }
        assert state[m2.message_id] == {"content": "", "status": "recalled", "reactions": {}}
        assert state[m3.message_id] == {"content": "", "status": "deleted", "reactions": {}}
        seen = await history(system, bob, group.group_id)
        for mid, expected in state.items():
            assert (seen[mid]["content"], seen[mid]["status"]) == (expected["content"], expected["status"])
    finally:
        await a1.close()
        await c1.close()


async def test_edits_stay_in_order_with_the_sends(system: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    a1 = await system.client(system.a, alice)
    b1 = await system.client(system.b, bob)
    try:
        first = await a1.send("user", bob, "v0")
        await receive_n(b1, 1)
        for n in range(1, 11):  # an edit and a send, pipelined: the log keeps their order
            await a1.edit(first.message_id, f"v{n}")
            await a1.send("user", bob, f"after v{n}")
        deliveries = await receive_n(b1, 20)
        seqs = [d.message["seq"] for d in deliveries]
        assert seqs == sorted(seqs) and len(set(seqs)) == 20
        order = [d.content for d in deliveries]
        assert order == [x for n in range(1, 11) for x in (f"v{n}", f"after v{n}")]
        seen = await history(system, bob, direct_conversation_id(alice, bob))
        assert seen[first.message_id]["content"] == "v10"
    finally:
        await a1.close()
        await b1.close()


async def test_refused_changes_get_their_codes_and_nothing_reaches_kafka(system: System) -> None:
    alice, bob, carol = uid("alice"), uid("bob"), uid("carol")
    async with await api(system, alice) as http:
        group = await http.create_group("club", [bob])
    a1 = await system.client(system.a, alice)
    b1 = await system.client(system.b, bob)
    c1 = await system.client(system.b, carol)
    try:
        direct = await a1.send("user", bob, "mine")
        in_group = await a1.send("group", group.group_id, "group one")
        elsewhere = await a1.send("user", carol, "to carol")
        await receive_n(b1, 2)
        await receive_n(c1, 1)
        sent_at = time.monotonic()
        unknown = str(uuid.uuid4())
        nonces: list[str] = []

        async def refused(call: Any, code: int) -> None:
            nonce = f"bad-{len(nonces)}-{uuid.uuid4().hex[:6]}"
            nonces.append(nonce)
            with pytest.raises(ChatError) as info:
                await call(nonce)
            assert info.value.code == code, info.value

        await refused(lambda n: b1.edit(direct.message_id, "not yours", client_msg_id=n), 8)
        await refused(lambda n: b1.recall(direct.message_id, client_msg_id=n), 8)
        await refused(lambda n: b1.delete(in_group.message_id, scope="everyone", client_msg_id=n), 8)
        await refused(lambda n: a1.edit(unknown, "who?", client_msg_id=n), 11)
        await refused(lambda n: b1.react(elsewhere.message_id, "\U0001f44d", client_msg_id=n), 11)  # not bob's chat
        await refused(lambda n: a1.edit(direct.message_id, "", client_msg_id=n), 5)
        await refused(lambda n: a1.edit(direct.message_id, "x" * 40_000, client_msg_id=n), 14)
        await refused(lambda n: a1.react(direct.message_id, "two words", client_msg_id=n), 5)
        await refused(lambda n: a1.send("user", bob, "re", reply_to=elsewhere.message_id, client_msg_id=n), 5)
        conn_frames = [
            ("edit", {"message_id": direct.message_id, "content": 7}),
            ("delete", {"message_id": direct.message_id, "scope": "nobody"}),
            ("recall", {"message_id": "not-a-uuid"}),
            ("react", {"message_id": direct.message_id, "emoji": "\U0001f44d", "remove": "yes"}),
        ]
        for frame_type, data in conn_frames:
            nonce = f"bad-{len(nonces)}-{uuid.uuid4().hex[:6]}"
            nonces.append(nonce)
            with pytest.raises(ChatError) as info:
                await a1._call(frame_type, {**data, "client_msg_id": nonce})
            assert info.value.code == 5 and info.value.data.get("field"), info.value
        await asyncio.sleep(max(0.0, RECALL_WINDOW_S + 0.5 - (time.monotonic() - sent_at)))
        await refused(lambda n: a1.recall(direct.message_id, client_msg_id=n), 17)
        assert (await a1.edit(direct.message_id, "still editable"))["kind"] == "edit"  # the edit window is longer

        codec = build_codec(system.settings)
        topic = TopicCatalog(system.settings).resolve(PERSONAL_CHAT).name
        published = {getattr(e.payload, "client_msg_id", None) for e in await read_topic(system.settings, codec, topic)}
        assert not published & set(nonces)
    finally:
        for client in (a1, b1, c1):
            await client.close()


async def _change_with_retries(call: Any) -> None:
    """A change retried like ``send`` retries: same ``client_msg_id`` on UNAVAILABLE (workers down)."""
    async with asyncio.timeout(60):
        while True:
            try:
                await call()
                return
            except ChatError as exc:
                if exc.code != 13:
                    raise
                await asyncio.sleep(exc.data.get("retry_after_ms", 200) / 1000)


async def test_kill_9_of_the_worker_during_a_stream_of_edits_and_group_changes_loses_and_duplicates_nothing(
    system: System,
) -> None:
    """Last in the module: it kills the module's worker (and starts a new one)."""
    alice, bob = uid("alice"), uid("bob")
    conversation = direct_conversation_id(alice, bob)
    a1 = await system.client(system.a, alice)
    b1 = await system.client(system.b, bob)
    async with await api(system, alice) as http:
        group = (await http.create_group("climbers", [bob])).group_id
    try:
        sent = [await a1.send("user", bob, f"m{i} v0") for i in range(10)]
        await receive_n(b1, 10)

        async def stream() -> None:
            for n in range(1, 4):
                for i, message in enumerate(sent):
                    nonce = f"edit-{i}-{n}"
                    await _change_with_retries(
                        lambda m=message, i=i, n=n, c=nonce: a1.edit(m.message_id, f"m{i} v{n}", client_msg_id=c)
                    )
                    if n == 2 and i == 0:
                        await _change_with_retries(
                            lambda: b1.react(sent[0].message_id, "\U0001f44d", client_msg_id="r1")
                        )

        async def renames() -> None:  # group changes, answered 202 while no worker applies them
            async with await api(system, alice) as http:
                for n in range(1, 7):
                    await http.update_group(group, name=f"climbers {n}")

        editing = asyncio.create_task(stream())
        renaming = asyncio.create_task(renames())
        await next_of(b1, "edit")  # mid-stream
        await asyncio.to_thread(system.worker.kill9)
        await asyncio.to_thread(system.worker.start)
        await editing
        await renaming
        got: list[Delivery] = []
        async with asyncio.timeout(60):
            while sum(d.message["kind"] == "edit" for d in got) < 30 - 1:  # one edit was taken above
                got.append(await b1.receive())
        seqs = [d.user_seq for d in got]
        assert seqs == list(range(seqs[0], seqs[0] + len(got)))  # dense: nothing lost, nothing twice
        ids = [d.message["message_id"] for d in got]
        assert len(ids) == len(set(ids))

        entries = await history(system, bob, conversation)
        edits = [m for m in entries.values() if m["kind"] == "edit"]
        assert len(edits) == 30  # each change stored once
        assert sorted(m["seq"] for m in entries.values()) == list(range(1, len(entries) + 1))
        assert [entries[m.message_id]["content"] for m in sent] == [f"m{i} v3" for i in range(10)]
        assert entries[sent[0].message_id]["reactions"] == [{"emoji": "\U0001f44d", "count": 1, "user_ids": [bob]}]

        async def renamed() -> bool:
            async with await api(system, bob) as http:
                return (await http.group_detail(group))["name"] == "climbers 6"

        await wait_until(renamed, timeout=60, what="the last rename applied")
        log = list((await history(system, bob, group)).values())
        events = [json.loads(m["content"])["event"] for m in log if m["kind"] == "system"]
        assert events == ["groupCreated", *["groupUpdated"] * 6]  # each group change once, in order
        assert sorted(m["seq"] for m in log) == list(range(1, len(log) + 1))
    finally:
        await a1.close()
        await b1.close()
