"""Bad input: every invalid envelope gets one clear error naming the field (never a fastavro
traceback), from the typed objects and from the JSON form alike."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from chat_events.codec import build_codec
from chat_events.errors import EventValidationError
from chat_events.events import (
    ChatMessage,
    DeviceAcked,
    EdgeHeartbeat,
    Envelope,
    Event,
    GroupCreated,
    GroupMemberJoined,
    GroupMemberLeft,
    MessageDispatched,
    MessageDispatchedBatch,
    MessageFannedOut,
    MessageFannedOutBatch,
    MessageStored,
    OfflinePushRequested,
    PersonalChatSent,
    RecordDeadLettered,
    UserBlocked,
    UserChatRateLimited,
    UserConnected,
    UserDisconnected,
    UserPresenceChanged,
    UserTyping,
    UserUnblocked,
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

STORED_MSG = ChatMessage(
    message_id=MSG.message_id,
    conversation_id="dm:alice:bob",
    seq=1,
    sender_id="alice",
    target_type="user",
    target_id="bob",
    message_type="text",
    payload="hello",
    sent_at_ms=1_700_000_000_000,
    stored_at_ms=1_700_000_000_005,
)
STORED = new_envelope(MessageStored(message=STORED_MSG), user_id="alice")
FANNED = new_envelope(MessageFannedOut(recipient_id="bob", message=STORED_MSG))
DISPATCHED = new_envelope(
    MessageDispatched(recipient_id="bob", user_seq=7, edge_id="edge-1-0a1b2c3d", message=STORED_MSG)
)
PUSH = new_envelope(
    OfflinePushRequested(
        recipient_id="bob",
        user_seq=7,
        message_id=MSG.message_id,
        conversation_id="dm:alice:bob",
        sender_id="alice",
        message_type="text",
        preview="alice: hello",
        unread=2,
    )
)
PRESENCE = new_envelope(UserPresenceChanged(status="online", sessions=1, changed_at_ms=1_700_000_000_000), user_id="a")
HEARTBEAT = new_envelope(EdgeHeartbeat(edge_id="edge-1-0a1b2c3d", interval_ms=5000, started_at_ms=0, sessions=3))
BLOCKED = new_envelope(UserBlocked(blocked_id="mallory"), user_id="alice")
UNBLOCKED = new_envelope(UserUnblocked(blocked_id="mallory"), user_id="alice")
GROUP = new_envelope(GroupCreated(group_id="g-1", name="Friends", owner_id="alice", member_ids=("alice", "bob")))
JOINED = new_envelope(GroupMemberJoined(group_id="g-1", member_id="carol", added_by="alice"))
LEFT = new_envelope(GroupMemberLeft(group_id="g-1", member_id="carol"))
DEAD = new_envelope(
    RecordDeadLettered(
        source_topic="chat.personal-chat",
        source_partition=0,
        source_offset=12,
        stage="store",
        error_code="undecodable_event",
        reason="corrupt",
        key=b"dm:alice:bob",
        value=b"\x00\x01",
    )
)
NEW_EVENTS = (STORED, FANNED, DISPATCHED, PUSH, PRESENCE, HEARTBEAT, BLOCKED, UNBLOCKED, GROUP, JOINED, LEFT, DEAD)
TYPING = new_envelope(
    UserTyping(
        conversation_id="dm:alice:bob", target_type="user", target_id="bob", state="start", recipient_ids=("bob",)
    ),
    user_id="alice",
    session_id="s-1",
)
GROUP_TYPING = new_envelope(
    UserTyping(conversation_id="g-1", target_type="group", target_id="g-1", state="stop", recipient_ids=("b", "c")),
    user_id="alice",
)
ACKED = new_envelope(
    DeviceAcked(device_id="phone-1", seq=318, received_at_ms=1_700_000_000_000), user_id="bob", session_id="s-2"
)
FANNED_BATCH = new_envelope(MessageFannedOutBatch(recipient_ids=("bob", "carol"), message=STORED_MSG), user_id="bob")
DISPATCHED_BATCH = new_envelope(
    MessageDispatchedBatch(
        recipient_ids=("bob", "carol"), user_seqs=(3, 1), edge_id="edge-1-00ff00ff", message=STORED_MSG
    )
)
V5_EVENTS = (FANNED_BATCH, DISPATCHED_BATCH)
V4_EVENTS = (
    TYPING,
    GROUP_TYPING,
    # bob typing back in the same conversation; no recipients listed (the default)
    new_envelope(
        UserTyping(conversation_id="dm:alice:bob", target_type="user", target_id="alice", state="stop"), user_id="bob"
    ),
    ACKED,
    # boundaries: seq 0 (nothing received yet), a 128-character device id
    new_envelope(DeviceAcked(device_id="d" * 128, seq=0, received_at_ms=0), user_id="bob", session_id="s-2"),
    new_envelope(
        DeviceAcked(device_id="phone-1", seq=2**63 - 1, received_at_ms=2**63 - 1), user_id="bob", session_id="s"
    ),
)


def _msg(**changes: Any) -> Envelope:
    return replace(GOOD, payload=replace(MSG, **changes))


def _event(envelope: Envelope, **changes: Any) -> Envelope:
    event: Event = replace(envelope.payload, **changes)  # type: ignore[arg-type]
    return replace(envelope, payload=event)


def _stored(envelope: Envelope = STORED, **changes: Any) -> Envelope:
    """``envelope`` (one holding ``message``) with its ChatMessage changed."""
    return _event(envelope, message=replace(STORED_MSG, **changes))


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
    (
        "session edge id not an edge id",
        new_envelope(UserConnected(edge_id="Edge@1"), user_id="alice"),
        "payload.userConnected.edge_id",
    ),
    (
        "session device id not an id",
        new_envelope(UserConnected(edge_id="e-1", device_id="../../x/<script>"), user_id="alice"),
        "payload.userConnected.device_id",
    ),
    # messageStored and the ChatMessage record
    ("stored seq zero", _stored(seq=0), "payload.messageStored.message.seq"),
    ("stored seq beyond int64", _stored(seq=2**63), "payload.messageStored.message.seq"),
    ("stored message id not a uuid", _stored(message_id="m-1"), "payload.messageStored.message.message_id"),
    (
        "stored wrong conversation",
        _stored(conversation_id="dm:alice:carol"),
        "payload.messageStored.message.conversation_id",
    ),
    ("stored unknown status", _stored(status="archived"), "payload.messageStored.message.status"),
    ("stored unknown target type", _stored(target_type="room"), "payload.messageStored.message.target_type"),
    ("stored unknown message type", _stored(message_type="gif"), "payload.messageStored.message.message_type"),
    ("stored empty payload", _stored(payload=""), "payload.messageStored.message.payload"),
    ("stored oversize payload", _stored(payload="é" * 600), "payload.messageStored.message.payload"),
    ("stored negative sent_at", _stored(sent_at_ms=-1), "payload.messageStored.message.sent_at_ms"),
    ("stored mention not an id", _stored(mentions=("a b",)), "payload.messageStored.message.mentions[0]"),
    ("stored message not a record", _event(STORED, message={"seq": 1}), "payload.messageStored.message"),
    # messageFannedOut, messageDispatched
    ("fanned-out bad recipient", _event(FANNED, recipient_id=""), "payload.messageFannedOut.recipient_id"),
    ("fanned-out bad message", _stored(FANNED, seq=-5), "payload.messageFannedOut.message.seq"),
    ("dispatched user_seq zero", _event(DISPATCHED, user_seq=0), "payload.messageDispatched.user_seq"),
    ("dispatched upper-case edge", _event(DISPATCHED, edge_id="Edge-1"), "payload.messageDispatched.edge_id"),
    ("dispatched edge id too long", _event(DISPATCHED, edge_id="e" * 65), "payload.messageDispatched.edge_id"),
    # offlinePushRequested
    ("push preview too long", _event(PUSH, preview="x" * 201), "payload.offlinePushRequested.preview"),
    ("push negative unread", _event(PUSH, unread=-1), "payload.offlinePushRequested.unread"),
    ("push message id not a uuid", _event(PUSH, message_id="x"), "payload.offlinePushRequested.message_id"),
    ("push unsorted dm", _event(PUSH, conversation_id="dm:bob:alice"), "payload.offlinePushRequested.conversation_id"),
    ("push unknown message type", _event(PUSH, message_type="gif"), "payload.offlinePushRequested.message_type"),
    # userPresenceChanged
    ("presence without user", replace(PRESENCE, user_id=None), "userId"),
    ("presence unknown status", _event(PRESENCE, status="away"), "payload.userPresenceChanged.status"),
    ("presence negative sessions", _event(PRESENCE, sessions=-1), "payload.userPresenceChanged.sessions"),
    ("presence online without sessions", _event(PRESENCE, sessions=0), "payload.userPresenceChanged.sessions"),
    (
        "presence offline with sessions",
        _event(PRESENCE, status="offline", sessions=2),
        "payload.userPresenceChanged.sessions",
    ),
    ("presence time beyond int64", _event(PRESENCE, changed_at_ms=2**63), "payload.userPresenceChanged.changed_at_ms"),
    # edgeHeartbeat
    ("heartbeat interval zero", _event(HEARTBEAT, interval_ms=0), "payload.edgeHeartbeat.interval_ms"),
    ("heartbeat bad edge id", _event(HEARTBEAT, edge_id="edge/1"), "payload.edgeHeartbeat.edge_id"),
    ("heartbeat negative sessions", _event(HEARTBEAT, sessions=-1), "payload.edgeHeartbeat.sessions"),
    ("heartbeat stopping not a bool", _event(HEARTBEAT, stopping="no"), "payload.edgeHeartbeat.stopping"),
    # userBlocked, userUnblocked
    ("block without blocker", replace(BLOCKED, user_id=None), "userId"),
    ("block bad id", _event(BLOCKED, blocked_id="a:b"), "payload.userBlocked.blocked_id"),
    ("block oneself", _event(BLOCKED, blocked_id="alice"), "payload.userBlocked.blocked_id"),
    ("unblock without blocker", replace(UNBLOCKED, user_id=None), "userId"),
    ("unblock bad id", _event(UNBLOCKED, blocked_id=""), "payload.userUnblocked.blocked_id"),
    # group events
    ("group empty name", _event(GROUP, name=""), "payload.groupCreated.name"),
    ("group name too long", _event(GROUP, name="n" * 201), "payload.groupCreated.name"),
    ("group member not an id", _event(GROUP, member_ids=("alice", "")), "payload.groupCreated.member_ids[1]"),
    ("group members not a list", _event(GROUP, member_ids="alice"), "payload.groupCreated.member_ids"),
    ("joined bad member", _event(JOINED, member_id="a b"), "payload.groupMemberJoined.member_id"),
    ("joined bad adder", _event(JOINED, added_by=""), "payload.groupMemberJoined.added_by"),
    ("left bad group", _event(LEFT, group_id=None), "payload.groupMemberLeft.group_id"),
    ("left bad remover", _event(LEFT, removed_by=":"), "payload.groupMemberLeft.removed_by"),
    # recordDeadLettered
    ("dead letter bad topic", _event(DEAD, source_topic="a topic"), "payload.recordDeadLettered.source_topic"),
    (
        "dead letter negative partition",
        _event(DEAD, source_partition=-1),
        "payload.recordDeadLettered.source_partition",
    ),
    ("dead letter negative offset", _event(DEAD, source_offset=-1), "payload.recordDeadLettered.source_offset"),
    ("dead letter value not bytes", _event(DEAD, value="x"), "payload.recordDeadLettered.value"),
    ("dead letter key not bytes", _event(DEAD, key=bytearray(b"k")), "payload.recordDeadLettered.key"),
    (
        "dead letter too big",
        _event(DEAD, key=b"k" * 10, value=b"v" * 999_995),
        "payload.recordDeadLettered.value",
    ),
    ("dead letter empty stage", _event(DEAD, stage=""), "payload.recordDeadLettered.stage"),
    # userTyping
    ("typing without user", replace(TYPING, user_id=None), "userId"),
    ("typing user not an id", replace(TYPING, user_id="a:b"), "userId"),
    ("typing unknown state", _event(TYPING, state="paused"), "payload.userTyping.state"),
    ("typing state wrong case", _event(TYPING, state="START"), "payload.userTyping.state"),
    ("typing state missing", _event(TYPING, state=None), "payload.userTyping.state"),
    ("typing unknown target type", _event(TYPING, target_type="room"), "payload.userTyping.target_type"),
    ("typing target not an id", _event(TYPING, target_id="b o b"), "payload.userTyping.target_id"),
    ("typing empty conversation", _event(TYPING, conversation_id=""), "payload.userTyping.conversation_id"),
    ("typing unsorted dm", _event(TYPING, conversation_id="dm:bob:alice"), "payload.userTyping.conversation_id"),
    ("typing dm of three", _event(TYPING, conversation_id="dm:a:b:c"), "payload.userTyping.conversation_id"),
    (
        "typing conversation not the target",
        _event(TYPING, conversation_id="dm:alice:carol"),
        "payload.userTyping.conversation_id",
    ),
    (
        "typing in another user's conversation",
        replace(TYPING, user_id="mallory"),
        "payload.userTyping.conversation_id",
    ),
    (
        "typing group conversation not the group",
        _event(GROUP_TYPING, conversation_id="g-2"),
        "payload.userTyping.conversation_id",
    ),
    (
        "typing group with a dm conversation",
        _event(GROUP_TYPING, conversation_id="dm:alice:g-1"),
        "payload.userTyping.conversation_id",
    ),
    ("typing recipients not a list", _event(TYPING, recipient_ids="bob"), "payload.userTyping.recipient_ids"),
    ("typing recipient not an id", _event(TYPING, recipient_ids=("bob", "")), "payload.userTyping.recipient_ids[1]"),
    (
        "typing too many recipients",
        _event(TYPING, recipient_ids=("bob",) * 100_001),
        "payload.userTyping.recipient_ids",
    ),
    # deviceAcked
    ("ack without user", replace(ACKED, user_id=None), "userId"),
    ("ack without session", replace(ACKED, session_id=None), "sessionId"),
    ("ack session not a string", replace(ACKED, session_id=7), "sessionId"),
    ("ack negative seq", _event(ACKED, seq=-1), "payload.deviceAcked.seq"),
    ("ack seq beyond int64", _event(ACKED, seq=2**63), "payload.deviceAcked.seq"),
    ("ack seq a bool", _event(ACKED, seq=True), "payload.deviceAcked.seq"),
    ("ack seq a string", _event(ACKED, seq="318"), "payload.deviceAcked.seq"),
    ("ack negative received_at", _event(ACKED, received_at_ms=-1), "payload.deviceAcked.received_at_ms"),
    ("ack empty device", _event(ACKED, device_id=""), "payload.deviceAcked.device_id"),
    ("ack device id too long", _event(ACKED, device_id="d" * 129), "payload.deviceAcked.device_id"),
    ("ack device id not a string", _event(ACKED, device_id=1), "payload.deviceAcked.device_id"),
    ("ack device id a path", _event(ACKED, device_id="../../x/<script>"), "payload.deviceAcked.device_id"),
    # messageFannedOutBatch / messageDispatchedBatch
    ("batch without recipients", _event(FANNED_BATCH, recipient_ids=()), "payload.messageFannedOutBatch.recipient_ids"),
    (
        "batch with a repeated recipient",
        _event(FANNED_BATCH, recipient_ids=("bob", "bob")),
        "payload.messageFannedOutBatch.recipient_ids",
    ),
    (
        "batch recipient not an id",
        _event(FANNED_BATCH, recipient_ids=("bob", "a:b")),
        "payload.messageFannedOutBatch.recipient_ids[1]",
    ),
    (
        "dispatch batch seqs do not match the recipients",
        _event(DISPATCHED_BATCH, user_seqs=(3,)),
        "payload.messageDispatchedBatch.user_seqs",
    ),
    (
        "dispatch batch seq zero",
        _event(DISPATCHED_BATCH, user_seqs=(3, 0)),
        "payload.messageDispatchedBatch.user_seqs[1]",
    ),
    (
        "dispatch batch bad edge",
        _event(DISPATCHED_BATCH, edge_id="Edge 1"),
        "payload.messageDispatchedBatch.edge_id",
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
    for envelope in (GOOD, DISCONNECT, LIMITED, *NEW_EVENTS, *V4_EVENTS, *V5_EVENTS):
        assert CODEC.decode(CODEC.encode(envelope)) == envelope
        assert envelope_from_json(envelope_to_json(envelope)) == envelope


def test_removed_messages_may_have_an_empty_payload() -> None:
    for status in ("recalled", "deleted"):
        envelope = _stored(payload="", status=status)
        assert CODEC.decode(CODEC.encode(envelope)) == envelope


def test_dead_letter_bytes_are_base64_in_json() -> None:
    body = envelope_to_json(DEAD)["payload"]["recordDeadLettered"]
    assert (body["key"], body["value"]) == ("ZG06YWxpY2U6Ym9i", "AAE=")
    assert envelope_to_json(_event(DEAD, key=None))["payload"]["recordDeadLettered"]["key"] is None


def _json(**changes: Any) -> dict[str, Any]:
    data = envelope_to_json(GOOD)
    data.update(changes)
    return data


_STORED_JSON = envelope_to_json(STORED)["payload"]["messageStored"]["message"]
_DEAD_JSON = envelope_to_json(DEAD)["payload"]["recordDeadLettered"]
_DEAD_VALUE = "payload.recordDeadLettered.value"
_TYPING_JSON = envelope_to_json(TYPING)["payload"]["userTyping"]
_ACKED_JSON = envelope_to_json(ACKED)["payload"]["deviceAcked"]

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
    (
        "nested record not an object",
        _json(payload={"messageStored": {"message": "hi"}}),
        "payload.messageStored.message",
    ),
    (
        "nested record unknown field",
        _json(payload={"messageStored": {"message": {**_STORED_JSON, "color": "red"}}}),
        "payload.messageStored.message.color",
    ),
    (
        "nested record missing field",
        _json(payload={"messageStored": {"message": {k: v for k, v in _STORED_JSON.items() if k != "seq"}}}),
        "payload.messageStored.message.seq",
    ),
    (
        "nested mentions not an array",
        _json(payload={"messageStored": {"message": {**_STORED_JSON, "mentions": "bob"}}}),
        "payload.messageStored.message.mentions",
    ),
    ("bytes not base64", _json(payload={"recordDeadLettered": {**_DEAD_JSON, "value": "not base64!"}}), _DEAD_VALUE),
    ("bytes not a string", _json(payload={"recordDeadLettered": {**_DEAD_JSON, "value": [0, 1]}}), _DEAD_VALUE),
    ("missing id", {k: v for k, v in envelope_to_json(GOOD).items() if k != "id"}, "id"),
    (
        "typing state missing",
        _json(payload={"userTyping": {k: v for k, v in _TYPING_JSON.items() if k != "state"}}),
        "payload.userTyping.state",
    ),
    (
        "typing recipients not an array",
        _json(payload={"userTyping": {**_TYPING_JSON, "recipient_ids": "bob"}}),
        "payload.userTyping.recipient_ids",
    ),
    (
        "ack seq missing",
        {**envelope_to_json(ACKED), "payload": {"deviceAcked": {k: v for k, v in _ACKED_JSON.items() if k != "seq"}}},
        "payload.deviceAcked.seq",
    ),
    (
        "ack without session in JSON",
        {**envelope_to_json(ACKED), "sessionId": None},
        "sessionId",
    ),
]


@pytest.mark.parametrize(("case", "data", "field"), BAD_JSON, ids=[c[0] for c in BAD_JSON])
def test_invalid_json_form_names_the_field(case: str, data: Any, field: str) -> None:
    with pytest.raises(EventValidationError) as caught:
        CODEC.encode(envelope_from_json(data))
    assert caught.value.field == field
