"""The codec: round trips over every event type, pinned bytes, and clear decode errors."""

from __future__ import annotations

import struct

import pytest
from hypothesis import Phase, find, given, settings

from chat_events.codec import build_codec
from chat_events.errors import EventDecodeError
from chat_events.events import (
    EVENT_TYPES,
    ChatMessage,
    Envelope,
    MessageDispatched,
    PersonalChatSent,
    UserTyping,
    envelope_from_json,
    envelope_to_json,
)
from chat_events.settings import Settings
from tests.strategies import envelopes

CODEC = build_codec(Settings(max_payload_bytes=32 * 1024))

PINNED = Envelope(
    payload=PersonalChatSent(
        message_id="d7d9d9fd-478f-40e6-b651-49b7f19878a2",
        sender_id="alice",
        target_id="bob",
        payload="hi",
        target_type="user",
        target_members=("bob",),
        conversation_id="dm:alice:bob",
    ),
    id="0b6f9a0e-8a53-4d38-9d1a-3d2e1f0c4b5a",
    version=1,
    name="personalChatSent",
    namespace="chat.personal",
    parent_namespace="chat",
    timestamp="2019-08-24T14:15:22.000Z",
    user_id="alice",
    trace_id="t1",
)
PINNED_BODY_HEX = (
    "4830623666396130652d386135332d346433382d396431612d336432653166306334623561022070657273"
    "6f6e616c4368617453656e741a636861742e706572736f6e616c02086368617430323031392d30382d32345431343a31"
    "353a32322e3030305a00020a616c696365020474310000004864376439643966642d343738662d343065362d62363531"
    "2d3439623766313938373861320a616c69636506626f6204686908757365720206626f62000218646d3a616c6963653a"
    "626f6208746578740000"
)
"""The Avro binary of PINNED as v2..v6 wrote it (new union branches are appended)."""
PINNED_BODY_V7_HEX = PINNED_BODY_HEX + "00" + "0e6d657373616765"
"""v7 appended ``reply_to`` (null: union branch 0) and ``kind`` ("message") to personalChatSent."""
PINNED_HEX = "00" + "00000007" + PINNED_BODY_V7_HEX
V6_PINNED_HEX = "00" + "00000006" + PINNED_BODY_HEX
V5_PINNED_HEX = "00" + "00000005" + PINNED_BODY_HEX
"""As written now: Confluent frame with schema id 5 (v5 added the two fan-out batch events)."""
V4_PINNED_HEX = "00" + "00000004" + PINNED_BODY_HEX
"""The same envelope as the v4 writer wrote it (the pinned bytes before v5)."""
V3_PINNED_HEX = "00" + "00000003" + PINNED_BODY_HEX
"""The same envelope as the v3 writer wrote it (the pinned bytes before v4)."""
V2_PINNED_HEX = "00" + "00000002" + PINNED_BODY_HEX
"""The same envelope as the v2 writer wrote it (the pinned bytes before v3)."""

PINNED_DISPATCH = Envelope(
    payload=MessageDispatched(
        recipient_id="bob",
        user_seq=7,
        edge_id="edge-1-0a1b2c3d",
        message=ChatMessage(
            message_id="6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b",
            conversation_id="dm:alice:bob",
            seq=42,
            sender_id="alice",
            target_type="user",
            target_id="bob",
            message_type="text",
            payload="hi",
            client_msg_id="c1",
            mentions=("bob",),
            sent_at_ms=1566656122000,
            stored_at_ms=1566656122005,
        ),
    ),
    id="0b6f9a0e-8a53-4d38-9d1a-3d2e1f0c4b5a",
    version=1,
    name="messageDispatched",
    namespace="chat.message",
    parent_namespace="chat",
    timestamp="2019-08-24T14:15:22.005Z",
    user_id="bob",
    trace_id="t1",
)
PINNED_DISPATCH_BODY_HEX = (
    "4830623666396130652d386135332d346433382d396431612d33643265316630633462356102226d657373"
    "6167654469737061746368656418636861742e6d65737361676502086368617430323031392d30382d32345431343a31"
    "353a32322e3030355a000206626f620204743100000c06626f620e1e656467652d312d30613162326333644836663163"
    "326138652d336234642d346535662d386139622d30633164326533663461356218646d3a616c6963653a626f62540a61"
    "6c696365087573657206626f620874657874046869020463310206626f6200a0b2dabf985baab2dabf985b0c6e6f726d"
    "616c"
)
"""A v3 event with the nested ChatMessage record (union branch 6): its Avro binary, unchanged by v4..v6."""
PINNED_DISPATCH_BODY_V7_HEX = PINNED_DISPATCH_BODY_HEX + "0e6d657373616765" + "00" + "00" + "00" + "00"
"""v7 appended to ChatMessage ``kind`` ("message"), ``relates_to`` and ``reply_to`` (null), ``edited_at_ms``
and ``changed_seq`` (0)."""
PINNED_DISPATCH_HEX = "00" + "00000007" + PINNED_DISPATCH_BODY_V7_HEX
V6_PINNED_DISPATCH_HEX = "00" + "00000006" + PINNED_DISPATCH_BODY_HEX
V5_PINNED_DISPATCH_HEX = "00" + "00000005" + PINNED_DISPATCH_BODY_HEX
V4_PINNED_DISPATCH_HEX = "00" + "00000004" + PINNED_DISPATCH_BODY_HEX
V3_PINNED_DISPATCH_HEX = "00" + "00000003" + PINNED_DISPATCH_BODY_HEX
"""As the v3 writer wrote it (schema id 3)."""

PINNED_TYPING = Envelope(
    payload=UserTyping(
        conversation_id="dm:alice:bob", target_type="user", target_id="bob", state="start", recipient_ids=("bob",)
    ),
    id="0b6f9a0e-8a53-4d38-9d1a-3d2e1f0c4b5a",
    version=1,
    name="userTyping",
    namespace="chat.user",
    parent_namespace="chat",
    timestamp="2019-08-24T14:15:22.010Z",
    user_id="alice",
    trace_id="t1",
    session_id="s1",
)
V4_PINNED_TYPING_HEX = (
    "00000000044830623666396130652d386135332d346433382d396431612d336432653166306334623561021475736572"
    "547970696e6712636861742e7573657202086368617430323031392d30382d32345431343a31353a32322e3031305a00"
    "020a616c6963650204743102047331002018646d3a616c6963653a626f62087573657206626f620a7374617274020662"
    "6f6200"
)
"""A v4 event (union branch 16, zigzag 0x20) with an array field, as written under schema id 4."""
PINNED_TYPING_HEX = "00" + "00000007" + V4_PINNED_TYPING_HEX[10:]
V6_PINNED_TYPING_HEX = "00" + "00000006" + V4_PINNED_TYPING_HEX[10:]
V5_PINNED_TYPING_HEX = "00" + "00000005" + V4_PINNED_TYPING_HEX[10:]
"""The same event as written now (schema id 5: the body is unchanged, branches are appended)."""


@given(envelopes())
@settings(max_examples=300)
def test_avro_round_trip_of_every_event_type(envelope: Envelope) -> None:
    assert CODEC.decode(CODEC.encode(envelope)) == envelope


@given(envelopes())
@settings(max_examples=200)
def test_json_form_round_trip(envelope: Envelope) -> None:
    assert envelope_from_json(envelope_to_json(envelope)) == envelope


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_the_round_trip_strategy_covers_every_event_type(name: str) -> None:
    """``envelopes()`` draws every event type (a new type must be added to tests/strategies.py)."""
    found = settings(max_examples=2000, database=None, phases=[Phase.generate])
    envelope = find(envelopes(), lambda e: e.name == name, settings=found)
    assert CODEC.decode(CODEC.encode(envelope)) == envelope
    assert envelope_from_json(envelope_to_json(envelope)) == envelope


def test_frame_is_confluent_magic_byte_and_schema_id() -> None:
    data = CODEC.encode(PINNED)
    magic, schema_id = struct.unpack(">bI", data[:5])
    assert magic == 0
    assert schema_id == CODEC.writer_id == 7


def test_pinned_bytes() -> None:
    """The exact wire bytes of one envelope: any change here breaks every consumer."""
    data = CODEC.encode(PINNED)
    assert data.hex() == PINNED_HEX
    assert CODEC.decode(bytes.fromhex(PINNED_HEX)) == PINNED


def test_pinned_bytes_of_a_nested_record_event() -> None:
    assert CODEC.encode(PINNED_DISPATCH).hex() == PINNED_DISPATCH_HEX
    assert CODEC.decode(bytes.fromhex(PINNED_DISPATCH_HEX)) == PINNED_DISPATCH


def test_pinned_bytes_of_a_v4_event() -> None:
    assert CODEC.encode(PINNED_TYPING).hex() == PINNED_TYPING_HEX
    assert CODEC.decode(bytes.fromhex(PINNED_TYPING_HEX)) == PINNED_TYPING


def test_v6_written_pinned_bytes_still_decode() -> None:
    """Records written under schema id 6 (before v7 appended fields) decode with the current reader,
    the new fields taking their defaults."""
    assert CODEC.decode(bytes.fromhex(V6_PINNED_HEX)) == PINNED
    assert CODEC.decode(bytes.fromhex(V6_PINNED_DISPATCH_HEX)) == PINNED_DISPATCH
    assert CODEC.decode(bytes.fromhex(V6_PINNED_TYPING_HEX)) == PINNED_TYPING


def test_v5_written_pinned_bytes_still_decode() -> None:
    """Records written under schema id 5 (before the conversation-list events) decode unchanged."""
    assert CODEC.decode(bytes.fromhex(V5_PINNED_HEX)) == PINNED
    assert CODEC.decode(bytes.fromhex(V5_PINNED_DISPATCH_HEX)) == PINNED_DISPATCH
    assert CODEC.decode(bytes.fromhex(V5_PINNED_TYPING_HEX)) == PINNED_TYPING


def test_v4_written_pinned_bytes_still_decode() -> None:
    """Records written under schema id 4 (before v5) decode with the current reader."""
    assert CODEC.decode(bytes.fromhex(V4_PINNED_HEX)) == PINNED
    assert CODEC.decode(bytes.fromhex(V4_PINNED_DISPATCH_HEX)) == PINNED_DISPATCH
    assert CODEC.decode(bytes.fromhex(V4_PINNED_TYPING_HEX)) == PINNED_TYPING


def test_v2_written_pinned_bytes_still_decode() -> None:
    """Records already in topics, written under schema id 2, decode with the current reader."""
    assert CODEC.decode(bytes.fromhex(V2_PINNED_HEX)) == PINNED


def test_v3_written_pinned_bytes_still_decode() -> None:
    """Records written under schema id 3 (before v4) decode with the current reader."""
    assert CODEC.decode(bytes.fromhex(V3_PINNED_HEX)) == PINNED
    assert CODEC.decode(bytes.fromhex(V3_PINNED_DISPATCH_HEX)) == PINNED_DISPATCH


def test_json_form_is_the_seed_shape() -> None:
    assert list(envelope_to_json(PINNED)) == [
        "payload",
        "id",
        "version",
        "name",
        "namespace",
        "parentNamespace",
        "timestamp",
        "clientId",
        "userId",
        "traceId",
        "sessionId",
        "spanContext",
    ]
    assert list(envelope_to_json(PINNED)["payload"]) == ["personalChatSent"]
    assert list(envelope_to_json(PINNED)["payload"]["personalChatSent"])[:6] == [
        "message_id",
        "sender_id",
        "target_id",
        "payload",
        "target_type",
        "target_members",
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "too short"),
        (b"\x00\x00\x00", "too short"),
        (b"\x01\x00\x00\x00\x02\x00", "magic"),
        (b"\x00\x00\x00\x03\xe7\x00", "schema id 999"),
        (b"\x00\x00\x00\x00\x02\xff\xff\xff", "corrupt"),
    ],
)
def test_decode_errors_are_clear(data: bytes, reason: str) -> None:
    with pytest.raises(EventDecodeError, match=reason):
        CODEC.decode(data)


def test_trailing_bytes_are_rejected() -> None:
    with pytest.raises(EventDecodeError, match="trailing"):
        CODEC.decode(CODEC.encode(PINNED) + b"\x00")


def test_truncated_record_is_rejected() -> None:
    with pytest.raises(EventDecodeError):
        CODEC.decode(CODEC.encode(PINNED)[:-3])
