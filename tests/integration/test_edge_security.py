"""The security table: every refused input gets its code, and nothing reaches Kafka.

A real worker and a real edge with tight limits (burst of 5 sends, an Origin allowlist); each
case uses fresh users and then reads the topics back to prove the refusal wrote nothing.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chat_events.api.tokens import issue_token
from chat_events.client import HttpApi
from chat_events.codec import build_codec
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.settings import Settings
from chat_events.topics import GROUP_EVENTS, PERSONAL_CHAT, USER_EVENTS, TopicCatalog
from tests.conftest import make_settings
from tests.integration.edge_harness import EdgeProcess
from tests.integration.worker_harness import WorkerProcess, read_topic

ALLOWED_ORIGIN = "https://chat.example.com"


@dataclass
class Secured:
    settings: Settings
    edge: EdgeProcess

    def token(self, user: str, *, secret: str | None = None, now_s: float | None = None, ttl_s: int = 600) -> str:
        key = secret or self.settings.auth_secret.get_secret_value()
        return issue_token(user, key, ttl_s=ttl_s, now_s=now_s)[0]

    async def envelopes_from(self, user: str, spec: object) -> list[str]:
        topic = TopicCatalog(self.settings).resolve(spec).name  # type: ignore[arg-type]
        envelopes = await read_topic(self.settings, build_codec(self.settings), topic)
        return [e.name for e in envelopes if e.user_id == user]


@pytest.fixture(scope="module")
async def secured(kafka_target: KafkaTarget, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Secured]:
    tmp: Path = tmp_path_factory.mktemp("secured")
    settings = make_settings(
        kafka_target,
        tmp,
        worker_app_id=f"w-{uuid.uuid4().hex[:8]}",
        send_rate_per_s=0.5,
        send_burst=5,
        allowed_origins=ALLOWED_ORIGIN,
    )
    await ensure_topics(settings, kafka_target)
    worker = WorkerProcess(settings, tmp / "worker.log")
    edge = EdgeProcess(settings, tmp / "edge.log")
    worker.start()
    edge.start()
    try:
        yield Secured(settings, edge)
    finally:
        edge.stop()
        worker.stop()


def uid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def send_frame(target: str, *, target_type: str = "user", rid: int = 1, **extra: object) -> str:
    data = {"target_type": target_type, "target_id": target, "content": "hi", "client_msg_id": uuid.uuid4().hex}
    return json.dumps({"type": "send", "request_id": rid, "data": {**data, **extra}})


async def signed_in(secured: Secured, user: str, **headers: str) -> ClientConnection:
    ws = await connect(
        secured.edge.ws, additional_headers={"Authorization": f"Bearer {secured.token(user)}", **headers}
    )
    reply = json.loads(await ws.recv())
    assert reply["type"] == "sign_in" and reply["code"] == 0, reply
    return ws


async def refused_sign_in(ws: ClientConnection) -> tuple[dict[str, object], int | None]:
    reply = json.loads(await ws.recv())
    with pytest.raises(ConnectionClosed):
        await ws.recv()
    return reply, ws.close_code


async def test_no_token(secured: Secured) -> None:
    user = uid("anon")
    async with connect(secured.edge.ws) as ws:
        await ws.send(send_frame("bob"))  # a send before signing in
        reply, close = await refused_sign_in(ws)
    assert reply["code"] == 1 and close == 4001
    assert await secured.envelopes_from(user, PERSONAL_CHAT) == []


async def test_bad_signature(secured: Secured) -> None:
    user = uid("forger")
    forged = secured.token(user, secret="x" * 40)
    async with connect(secured.edge.ws, additional_headers={"Authorization": f"Bearer {forged}"}) as ws:
        reply, close = await refused_sign_in(ws)
    assert reply["code"] == 1 and close == 4001
    assert await secured.envelopes_from(user, USER_EVENTS) == []  # not even a userConnected


async def test_expired_token(secured: Secured) -> None:
    user = uid("late")
    expired = secured.token(user, now_s=time.time() - 7200, ttl_s=60)
    async with connect(secured.edge.ws) as ws:
        await ws.send(json.dumps({"type": "sign_in", "request_id": 9, "data": {"token": expired, "device_id": "d"}}))
        reply, close = await refused_sign_in(ws)
    assert reply["code"] == 2 and reply["request_id"] == 9 and close == 4002
    assert await secured.envelopes_from(user, USER_EVENTS) == []


async def test_wrong_origin(secured: Secured) -> None:
    user = uid("xsite")
    with pytest.raises(InvalidStatus) as refused:
        await connect(
            secured.edge.ws,
            additional_headers={"Authorization": f"Bearer {secured.token(user)}", "Origin": "https://evil.example.com"},
        )
    assert refused.value.response.status_code == 403
    ws = await signed_in(secured, uid("ok"), Origin=ALLOWED_ORIGIN)  # the allowed one passes
    await ws.close()
    assert await secured.envelopes_from(user, USER_EVENTS) == []


async def test_spoofed_sender(secured: Secured) -> None:
    user, victim = uid("mallory"), uid("victim")
    ws = await signed_in(secured, user)
    async with ws:
        await ws.send(send_frame(uid("bob"), sender_id=victim))
        reply = json.loads(await ws.recv())
    assert reply["code"] == 8 and reply["data"]["field"] == "sender_id"
    await asyncio.sleep(0.3)
    assert await secured.envelopes_from(user, PERSONAL_CHAT) == []
    assert await secured.envelopes_from(victim, PERSONAL_CHAT) == []


async def test_non_member_post(secured: Secured) -> None:
    owner, outsider = uid("owner"), uid("outsider")
    async with HttpApi(secured.edge.http, token=secured.token(owner)) as api:
        group = await api.create_group("private", [uid("friend")])
    ws = await signed_in(secured, outsider)
    async with ws:
        await ws.send(send_frame(group.group_id, target_type="group"))
        reply = json.loads(await ws.recv())
        await ws.send(send_frame("no-such-group", target_type="group", rid=2))
        missing = json.loads(await ws.recv())
    assert reply["code"] == 8 and reply["request_id"] == 1
    assert missing["code"] == 8  # the same answer: outsiders cannot probe which groups exist
    assert reply["message"] == missing["message"] == "no such group, or you are not a member"
    await asyncio.sleep(0.3)
    assert await secured.envelopes_from(outsider, PERSONAL_CHAT) == []


async def test_oversize_frame(secured: Secured) -> None:
    user = uid("big")
    ws = await signed_in(secured, user)
    async with ws:
        await ws.send(send_frame("bob", content="x" * (70 * 1024)))
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1009
    ws = await signed_in(secured, uid("big2"))
    async with ws:  # under the frame limit but over the payload limit: refused, socket stays open
        await ws.send(send_frame("bob", content="x" * (secured.settings.max_payload_bytes + 1)))
        assert json.loads(await ws.recv())["code"] == 14
    await asyncio.sleep(0.3)
    assert await secured.envelopes_from(user, PERSONAL_CHAT) == []


async def test_rate_limit_burst(secured: Secured) -> None:
    user, bob = uid("spammer"), uid("bob")
    ws = await signed_in(secured, user)
    async with ws:
        for rid in range(1, 11):
            await ws.send(send_frame(bob, rid=rid))
        replies = [json.loads(await ws.recv()) for _ in range(10)]
    codes = sorted(r["code"] for r in replies)
    assert codes == [0] * 5 + [9] * 5
    limited = [r for r in replies if r["code"] == 9]
    assert all(r["data"]["retry_after_ms"] > 0 for r in limited)
    await asyncio.sleep(0.5)
    assert len(await secured.envelopes_from(user, PERSONAL_CHAT)) == 5  # only the accepted ones
    assert (await secured.envelopes_from(user, USER_EVENTS)).count("userChatRateLimited") == 1


async def test_http_refuses_bad_input_with_a_code(secured: Secured) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=secured.edge.http) as http:
        bad_id = await http.post("/v1/dev/token", json={"user_id": "bad id"})
        no_token = await http.get("/v1/conversations")
        forged = await http.get("/v1/conversations", headers={"Authorization": "Bearer nope"})
    assert (bad_id.status_code, bad_id.json()["code"]) == (422, 5)
    assert (no_token.status_code, no_token.json()["code"]) == (401, 1)
    assert (forged.status_code, forged.json()["code"]) == (401, 1)


async def test_device_ids_are_ids(secured: Secured) -> None:
    header_user, frame_user = uid("devh"), uid("devf")
    bad = "../../x/<script>"
    headers = {"Authorization": f"Bearer {secured.token(header_user)}", "X-Device-Id": bad}
    async with connect(secured.edge.ws, additional_headers=headers) as ws:
        by_header, header_close = await refused_sign_in(ws)
    async with connect(secured.edge.ws) as ws:
        sign_in = {"token": secured.token(frame_user), "device_id": bad}
        await ws.send(json.dumps({"type": "sign_in", "request_id": 3, "data": sign_in}))
        by_frame, frame_close = await refused_sign_in(ws)
    assert (by_header["code"], by_header["data"], header_close) == (5, {"field": "device_id"}, 1008)
    assert (by_frame["code"], by_frame["data"], by_frame["request_id"], frame_close) == (
        5,
        {"field": "device_id"},
        3,
        4001,
    )
    await asyncio.sleep(0.3)
    assert await secured.envelopes_from(header_user, USER_EVENTS) == []  # no userConnected
    assert await secured.envelopes_from(frame_user, USER_EVENTS) == []


@pytest.mark.parametrize("levels", [255, 1000])
async def test_deeply_nested_content_is_refused(secured: Secured, levels: int) -> None:
    user = uid("deep")
    deep = '{"a":' * (levels - 1) + "{}" + "}" * (levels - 1)
    frame = send_frame(uid("bob"), message_type="custom", content="@@").replace('"@@"', deep)
    ws = await signed_in(secured, user)
    async with ws:
        await ws.send(frame)
        reply = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "heartbeat", "request_id": 2}))  # the socket stays open
        assert json.loads(await ws.recv())["code"] == 0
    assert (reply["code"], reply["data"]) == (5, {"field": "content"})
    await asyncio.sleep(0.3)
    assert await secured.envelopes_from(user, PERSONAL_CHAT) == []


async def test_history_takes_only_canonical_conversation_ids(secured: Secured) -> None:
    import httpx

    attacker, victim = uid("attacker"), uid("victim")
    auth = {"Authorization": f"Bearer {secured.token(attacker)}"}
    async with httpx.AsyncClient(base_url=secured.edge.http, headers=auth) as http:
        swapped = await http.get(f"/v1/conversations/dm:{max(attacker, victim)}:{min(attacker, victim)}/messages")
        dotted = await http.get(f"/v1/conversations/dm:..:{attacker}/messages")
        others = await http.get(f"/v1/conversations/dm:{victim}:{victim}z/messages")
        own = await http.get(f"/v1/conversations/dm:{min(attacker, victim)}:{max(attacker, victim)}/messages")
    for refused in (swapped, dotted):
        assert (refused.status_code, refused.json()["code"]) == (422, 5), refused.text
        assert refused.json()["message"].startswith("conversation_id: ")
    assert (others.status_code, others.json()["code"]) == (403, 8)
    assert (own.status_code, own.json()) == (200, {"messages": [], "has_more": False, "page_end_seq": None})


async def test_subscribe_room_does_not_tell_outsiders_whether_a_group_exists(secured: Secured) -> None:
    owner, outsider = uid("owner"), uid("outsider")
    async with HttpApi(secured.edge.http, token=secured.token(owner)) as api:
        group = await api.create_group("private", [uid("friend")])
    ws = await signed_in(secured, outsider)
    async with ws:
        for rid, room in ((1, group.group_id), (2, uid("no-such-group"))):
            await ws.send(json.dumps({"type": "subscribe_room", "request_id": rid, "data": {"room_id": room}}))
        answers = [json.loads(await ws.recv()) for _ in range(2)]
    assert sorted((a["request_id"], a["code"]) for a in answers) == [(1, 8), (2, 8)]
    assert [a["message"] for a in answers] == ["no such group, or you are not a member"] * 2


async def test_group_routes_do_not_tell_outsiders_whether_a_group_exists(secured: Secured) -> None:
    """Reading, adding to and leaving a group answer an outsider as one that does not exist;
    typing to it too. Nothing reaches Kafka."""
    import httpx

    owner, friend, outsider = uid("owner"), uid("friend"), uid("outsider")
    async with HttpApi(secured.edge.http, token=secured.token(owner)) as api:
        group = await api.create_group("private", [friend])
    auth = {"Authorization": f"Bearer {secured.token(outsider)}"}
    answers: dict[str, tuple[int, int, str]] = {}
    async with httpx.AsyncClient(base_url=secured.edge.http, headers=auth) as http:
        for which, group_id in (("existing", group.group_id), ("missing", uid("no-such-group"))):
            calls = {
                "show": http.get(f"/v1/groups/{group_id}"),
                "add": http.post(f"/v1/groups/{group_id}/members", json={"user_id": outsider}),
                "remove": http.delete(f"/v1/groups/{group_id}/members/{friend}"),
                "leave": http.delete(f"/v1/groups/{group_id}/members/{outsider}"),
            }
            for name, call in calls.items():
                answer = await call
                body = answer.json()
                answers[f"{name} {which}"] = (answer.status_code, body["code"], body["message"])
    hidden = (403, 8, "no such group, or you are not a member")
    assert answers == {f"{name} {which}": hidden for which in ("existing", "missing") for name in calls}, answers
    ws = await signed_in(secured, outsider)
    async with ws:
        for rid, target in ((1, group.group_id), (2, uid("no-such-group"))):
            typing = {"target_type": "group", "target_id": target, "state": "start"}
            await ws.send(json.dumps({"type": "typing", "request_id": rid, "data": typing}))
        replies = sorted([json.loads(await ws.recv()) for _ in range(2)], key=lambda r: r["request_id"])
    assert [r["code"] for r in replies] == [8, 8]
    assert [r["message"] for r in replies] == ["no such group, or you are not a member"] * 2
    await asyncio.sleep(0.3)
    assert await secured.envelopes_from(outsider, GROUP_EVENTS) == []


async def test_every_http_error_has_the_protocol_shape(secured: Secured) -> None:
    import httpx

    auth = {"Authorization": f"Bearer {secured.token(uid('shape'))}"}
    json_type = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=secured.edge.http) as http:
        answers = {
            "unknown route": await http.get("/v1/nope"),
            "wrong method": await http.get("/v1/dev/token"),
            "bad JSON": await http.post("/v1/dev/token", content=b"{bad", headers=json_type),
            "no body": await http.post("/v1/dev/token"),
            "not an object": await http.post("/v1/dev/token", json=["alice"]),
            "too deep": await http.post("/v1/dev/token", content=b"[" * 100_000 + b"]" * 100_000, headers=json_type),
            "missing field": await http.post("/v1/dev/token", json={}),
            "bad member": await http.post("/v1/groups", json={"name": "g", "member_ids": ["ok", "b c"]}, headers=auth),
            "bad query": await http.get("/v1/conversations?limit=0", headers=auth),
        }
    shapes = {name: (a.status_code, a.json()["code"]) for name, a in answers.items()}
    assert shapes == {
        "unknown route": (404, 11),
        "wrong method": (405, 11),
        "bad JSON": (400, 3),
        "no body": (400, 3),
        "not an object": (400, 3),
        "too deep": (400, 3),
        "missing field": (422, 5),
        "bad member": (422, 5),
        "bad query": (422, 5),
    }
    assert all(set(a.json()) == {"code", "message"} and a.json()["message"] for a in answers.values())
    assert answers["missing field"].json()["message"] == "user_id: is required"
    assert answers["bad member"].json()["message"].startswith("member_ids[1]: must be 1-128 characters")
    assert answers["bad query"].json()["message"] == "limit: must be at least 1"
    assert answers["wrong method"].json()["message"] == "GET is not allowed on /v1/dev/token (allowed: POST)"
    assert (await asyncio.to_thread(httpx.get, f"{secured.edge.http}/openapi.json")).status_code == 200
