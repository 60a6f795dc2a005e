"""Bad input: every invalid envelope gets one clear error naming the field (never a fastavro
traceback), from the typed objects and from the JSON form alike."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from chat_events.codec import build_codec
from chat_events.errors import EventValidationError
from chat_events.events import (
    Envelope,
    PersonalChatSent,
    UserChatRateLimited,
    UserDisconnected,
    envelope_from_json,
    envelope_to_json,
    new_envelope,
)
from chat_events.settings import Settings

CODEC = build_codec(Settings(max_payload_bytes=1024))
MSG = PersonalChatSent(
    message_id="d7d9d9fd-478f-40e6-b651-49b7f19878a2",
    sender_id="alice",
    target_id="bob",
    payload="hello",
    target_type="user",
)
GOOD = new_envelope(MSG, user_id="alice")
DISCONNECT = new_envelope(UserDisconnected(reason="client_closed", code=1000, forced=False), user_id="alice")
LIMITED = new_envelope(UserChatRateLimited(action="send", limit=10, window_ms=1000, retry_after_ms=250), user_id="a")


def _msg(**changes: Any) -> Envelope:
    return replace(GOOD, payload=replace(MSG, **changes))


BAD_ENVELOPES: list[tuple[str, Envelope, str]] = [
    ("message id not a uuid", _msg(message_id="not-a-uuid"), "payload.personalChatSent.message_id"),
    ("upper-case uuid", _msg(message_id=MSG.message_id.upper()), "payload.personalChatSent.message_id"),
    ("message id wrong type", _msg(message_id=42), "payload.personalChatSent.message_id"),
    ("sender empty", _msg(sender_id=""), "payload.personalChatSent.sender_id"),
    ("sender with colon", _msg(sender_id="a:b"), "payload.personalChatSent.sender_id"),
    ("target wrong type", _msg(target_id=None), "payload.personalChatSent.target_id"),
    ("oversize payload", _msg(payload="x" * 1025), "payload.personalChatSent.payload"),
    ("oversize multibyte payload", _msg(payload="é" * 600), "payload.personalChatSent.payload"),
    ("empty payload", _msg(payload=""), "payload.personalChatSent.payload"),
    ("payload not a string", _msg(payload={"text": "hi"}), "payload.personalChatSent.payload"),
    ("unknown target type", _msg(target_type="planet"), "payload.personalChatSent.target_type"),
    ("members not a list", _msg(target_members="bob"), "payload.personalChatSent.target_members"),
    ("member not an id", _msg(target_members=("bob", 7)), "payload.personalChatSent.target_members[1]"),
    ("wrong conversation", _msg(conversation_id="dm:alice:carol"), "payload.personalChatSent.conversation_id"),
    ("unknown message type", _msg(message_type="hologram"), "payload.personalChatSent.message_type"),
    ("envelope id not a uuid", replace(GOOD, id="123"), "id"),
    ("version zero", replace(GOOD, version=0), "version"),
    ("version a string", replace(GOOD, version="1"), "version"),
    ("version a bool", replace(GOOD, version=True), "version"),
    ("name mismatch", replace(GOOD, name="userConnected"), "name"),
    ("timestamp without zone", replace(GOOD, timestamp="2019-08-24T14:15:22"), "timestamp"),
    ("timestamp garbage", replace(GOOD, timestamp="yesterday"), "timestamp"),
    ("timestamp too short", replace(GOOD, timestamp="T1"), "timestamp"),
    ("client id wrong type", replace(GOOD, client_id=5), "clientId"),
    ("user event without user", replace(DISCONNECT, user_id=None), "userId"),
    (
        "code not an int",
        replace(DISCONNECT, payload=replace(DISCONNECT.payload, code="1000")),
        "payload.userDisconnected.code",
    ),
    (
        "code beyond int32",
        replace(DISCONNECT, payload=replace(DISCONNECT.payload, code=2**31)),
        "payload.userDisconnected.code",
    ),
    (
        "forced not a bool",
        replace(DISCONNECT, payload=replace(DISCONNECT.payload, forced=1)),
        "payload.userDisconnected.forced",
    ),
    ("limit zero", replace(LIMITED, payload=replace(LIMITED.payload, limit=0)), "payload.userChatRateLimited.limit"),
    (
        "negative retry",
        replace(LIMITED, payload=replace(LIMITED.payload, retry_after_ms=-1)),
        "payload.userChatRateLimited.retry_after_ms",
    ),
]


@pytest.mark.parametrize(("case", "envelope", "field"), BAD_ENVELOPES, ids=[c[0] for c in BAD_ENVELOPES])
def test_invalid_envelope_names_the_field(case: str, envelope: Envelope, field: str) -> None:
    with pytest.raises(EventValidationError) as caught:
        CODEC.encode(envelope)
    assert caught.value.field == field
    assert caught.value.code == "invalid_event"
    assert str(caught.value).startswith(field)


def test_valid_envelopes_encode() -> None:
    for envelope in (GOOD, DISCONNECT, LIMITED):
        assert CODEC.decode(CODEC.encode(envelope)) == envelope


def _json(**changes: Any) -> dict[str, Any]:
    data = envelope_to_json(GOOD)
    data.update(changes)
    return data


BAD_JSON: list[tuple[str, Any, str]] = [
    ("not an object", [1, 2], ""),
    ("no payload", {k: v for k, v in envelope_to_json(GOOD).items() if k != "payload"}, "payload"),
    ("unknown event", _json(payload={"personalChatDeleted": {}}), "payload"),
    ("two events", _json(payload={"userConnected": {}, "userDisconnected": {}}), "payload"),
    ("event not an object", _json(payload={"userConnected": "yes"}), "payload.userConnected"),
    (
        "missing field",
        _json(payload={"userDisconnected": {"reason": "x", "code": 1}}),
        "payload.userDisconnected.forced",
    ),
    ("unknown field", _json(payload={"userConnected": {"edge": "e1"}}), "payload.userConnected.edge"),
    (
        "members not an array",
        _json(
            payload={
                "personalChatSent": {**envelope_to_json(GOOD)["payload"]["personalChatSent"], "target_members": "bob"}
            }
        ),
        "payload.personalChatSent.target_members",
    ),
    ("unknown envelope field", _json(color="red"), "color"),
    ("missing id", {k: v for k, v in envelope_to_json(GOOD).items() if k != "id"}, "id"),
]


@pytest.mark.parametrize(("case", "data", "field"), BAD_JSON, ids=[c[0] for c in BAD_JSON])
def test_invalid_json_form_names_the_field(case: str, data: Any, field: str) -> None:
    with pytest.raises(EventValidationError) as caught:
        CODEC.encode(envelope_from_json(data))
    assert caught.value.field == field
