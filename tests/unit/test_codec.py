"""The codec: round trips over every event type, pinned bytes, and clear decode errors."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings

from chat_events.codec import build_codec
from chat_events.errors import EventDecodeError
from chat_events.events import Envelope, PersonalChatSent, envelope_from_json, envelope_to_json
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
PINNED_HEX = (
    "00000000024830623666396130652d386135332d346433382d396431612d336432653166306334623561022070657273"
    "6f6e616c4368617453656e741a636861742e706572736f6e616c02086368617430323031392d30382d32345431343a31"
    "353a32322e3030305a00020a616c696365020474310000004864376439643966642d343738662d343065362d62363531"
    "2d3439623766313938373861320a616c69636506626f6204686908757365720206626f62000218646d3a616c6963653a"
    "626f6208746578740000"
)


@given(envelopes())
@settings(max_examples=300)
def test_avro_round_trip_of_every_event_type(envelope: Envelope) -> None:
    assert CODEC.decode(CODEC.encode(envelope)) == envelope


@given(envelopes())
@settings(max_examples=200)
def test_json_form_round_trip(envelope: Envelope) -> None:
    assert envelope_from_json(envelope_to_json(envelope)) == envelope


def test_frame_is_confluent_magic_byte_and_schema_id() -> None:
    data = CODEC.encode(PINNED)
    magic, schema_id = struct.unpack(">bI", data[:5])
    assert magic == 0
    assert schema_id == CODEC.writer_id == 2


def test_pinned_bytes() -> None:
    """The exact wire bytes of one envelope: any change here breaks every consumer."""
    data = CODEC.encode(PINNED)
    assert data.hex() == PINNED_HEX
    assert CODEC.decode(bytes.fromhex(PINNED_HEX)) == PINNED


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
