"""``publish``'s arguments made into an envelope (pure): --json inline, @file or stdin; the
envelope form completed like the fields form; ``consume``'s topic and event filter."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from chat_events.cli.events_cmd import consume_target
from chat_events.cli.publish_input import envelope_from_cli, publish_topic, read_json_argument
from chat_events.errors import EventValidationError, UnknownTopicError, UsageError
from chat_events.events import PersonalChatSent
from chat_events.events.validation import validate_envelope
from chat_events.kafka.consumer import wanted
from chat_events.settings import Settings
from chat_events.topics import TopicCatalog

FIELDS = {"sender_id": "alice", "target_id": "bob", "target_type": "user", "payload": "hi"}
MESSAGE = {
    "message_id": "0b7a4a36-8a3c-4a53-9d7e-0e3c3b1f2a11",
    "conversation_id": "dm:alice:bob",
    "seq": 1,
    "sender_id": "alice",
    "target_type": "user",
    "target_id": "bob",
    "message_type": "text",
    "payload": "hi",
}
DISPATCHED = {"recipient_id": "bob", "user_seq": 1, "edge_id": "edge-a.1234abcd", "message": MESSAGE}


def test_json_comes_inline_from_a_file_or_from_stdin(tmp_path: Path) -> None:
    (tmp_path / "e.json").write_text('{"a": 1}')
    assert read_json_argument('{"b": 2}', io.StringIO("unused")) == '{"b": 2}'
    assert read_json_argument(f"@{tmp_path / 'e.json'}", io.StringIO()) == '{"a": 1}'
    assert read_json_argument("-", io.StringIO('{"c": 3}')) == '{"c": 3}'
    with pytest.raises(UsageError, match="cannot read"):
        read_json_argument(f"@{tmp_path / 'missing.json'}", io.StringIO())


def test_both_forms_fill_the_same_fields() -> None:
    by_fields = envelope_from_cli("personalChatSent", json.dumps(FIELDS), None, "s1", "cli")
    by_envelope = envelope_from_cli(
        "personalChatSent", json.dumps({"payload": {"personalChatSent": FIELDS}}), None, "s1", "cli"
    )
    for envelope in (by_fields, by_envelope):
        event = envelope.payload
        assert isinstance(event, PersonalChatSent)
        assert event.conversation_id == "dm:alice:bob" and len(event.message_id) == 36
        assert (envelope.user_id, envelope.session_id, envelope.client_id) == ("alice", "s1", "cli")
        assert envelope.id and envelope.timestamp and envelope.trace_id and envelope.version


def test_values_given_in_the_envelope_are_kept() -> None:
    fields = {**FIELDS, "message_id": "0b7a4a36-8a3c-4a53-9d7e-0e3c3b1f2a11", "conversation_id": "dm:alice:bob"}
    given = {"payload": {"personalChatSent": fields}, "userId": "alice", "sessionId": "mine", "id": "e-1"}
    envelope = envelope_from_cli("personalChatSent", json.dumps(given), "other", "flag", None)
    assert (envelope.id, envelope.user_id, envelope.session_id) == ("e-1", "alice", "mine")
    assert isinstance(envelope.payload, PersonalChatSent)
    assert envelope.payload.message_id == fields["message_id"]


def test_the_envelope_must_hold_the_named_event() -> None:
    with pytest.raises(EventValidationError, match="holds userConnected"):
        envelope_from_cli("personalChatSent", '{"payload": {"userConnected": {}}}', "a", None, None)


def test_consume_names_a_declared_topic_and_events_it_carries() -> None:
    catalog = TopicCatalog(Settings(topic_prefix="p."))
    assert consume_target(catalog, "chat.user-events", ["userConnected"]).name == "p.chat.user-events"
    assert consume_target(catalog, "p.chat.edge.edge-a.1234abcd", None).name == "p.chat.edge.edge-a.1234abcd"
    with pytest.raises(UnknownTopicError) as unknown:
        consume_target(catalog, "chat.nope", None)
    assert unknown.value.code == "unknown_topic" and unknown.value.exit_code == 3
    with pytest.raises(UsageError, match="carries personalChatSent"):
        consume_target(catalog, "chat.personal-chat", ["userConnected"])


def test_the_event_filter_lets_undecodable_records_through() -> None:
    envelope = envelope_from_cli("userConnected", "{}", "a", None, None)
    assert wanted(envelope, None) and wanted(envelope, {"userConnected"})
    assert not wanted(envelope, {"edgeHeartbeat"})
    assert wanted(None, {"edgeHeartbeat"})


@pytest.mark.parametrize("text", ["x" * 33, "\u00e9" * 17])  # too many characters; too many UTF-8 bytes
def test_a_size_limit_has_one_wording(text: str) -> None:
    envelope = envelope_from_cli("personalChatSent", json.dumps({**FIELDS, "payload": text}), None, None, None)
    with pytest.raises(EventValidationError) as refused:
        validate_envelope(envelope, max_payload_bytes=32)
    assert str(refused.value) == "payload.personalChatSent.payload: larger than 32 bytes"


def test_publish_routes_edge_events_to_the_edge_they_name() -> None:
    catalog = TopicCatalog(Settings(topic_prefix="p."))
    connected = envelope_from_cli("userConnected", "{}", "a", None, None)
    assert publish_topic(catalog, connected) == "p.chat.user-events"
    dispatched = envelope_from_cli("messageDispatched", json.dumps(DISPATCHED), None, None, None)
    assert publish_topic(catalog, dispatched) == "p.chat.edge.edge-a.1234abcd"
    typing = {"conversation_id": "dm:a:b", "target_type": "user", "target_id": "b", "state": "start"}
    with pytest.raises(UsageError, match="names no edge"):
        publish_topic(catalog, envelope_from_cli("userTyping", json.dumps(typing), "a", None, None))
