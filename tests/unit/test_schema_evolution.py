"""Schema evolution: data written by an old writer decodes with the current reader, and the
compatibility check catches changes that would break data already in topics."""

from __future__ import annotations

import copy
import json
import shutil
import struct
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer

from chat_events.codec import build_codec
from chat_events.codec.compat import backward_problems
from chat_events.codec.schemas import (
    RegisteredSchema,
    default_schema_dir,
    load_current_schema,
    load_registered,
    register_current,
)
from chat_events.codec.schemas_check import check_schemas
from chat_events.events import (
    EVENT_TYPES,
    EdgeHeartbeat,
    PersonalChatSent,
    UserChatRateLimited,
    UserConnected,
    UserDisconnected,
)
from chat_events.settings import Settings

CODEC = build_codec(Settings())
V1 = next(r for r in load_registered() if r.version == 1)
V2 = next(r for r in load_registered() if r.version == 2)
V3 = next(r for r in load_registered() if r.version == 3)
V4_EVENTS = ("userTyping", "deviceAcked")
"""The union branches schema v4 appended."""
ROOT = Path(__file__).resolve().parents[2]


def _old_bytes(record: dict[str, Any], writer: RegisteredSchema = V1) -> bytes:
    buffer = BytesIO()
    buffer.write(struct.pack(">bI", 0, writer.schema_id))
    schemaless_writer(buffer, parse_schema(writer.schema), record)
    return buffer.getvalue()


_v1_bytes = _old_bytes


V1_ENVELOPE = {
    "id": "0b6f9a0e-8a53-4d38-9d1a-3d2e1f0c4b5a",
    "version": 1,
    "namespace": "chat.personal",
    "parentNamespace": None,
    "timestamp": "2019-08-24T14:15:22Z",
    "clientId": None,
    "userId": "3194e023-c19f-4a42-9172-9e18d68e3a3a",
    "traceId": None,
    "sessionId": None,
    "spanContext": None,
}


def test_old_writer_bytes_decode_with_the_new_reader() -> None:
    """A v1 (seed 0.1.0) personalChatSent reads as v2 with the added fields at their defaults."""
    body = {
        "message_id": "d7d9d9fd-478f-40e6-b651-49b7f19878a2",
        "sender_id": "3194e023-c19f-4a42-9172-9e18d68e3a3a",
        "target_id": "d3bcdc92-4191-401b-ad0c-42056c6efab9",
        "payload": "string",
        "target_type": "user",
        "target_members": ["d3bcdc92-4191-401b-ad0c-42056c6efab9"],
    }
    data = _v1_bytes({**V1_ENVELOPE, "name": "personalChatSent", "payload": ("chat.events.personalChatSent", body)})
    envelope = CODEC.decode(data)
    assert envelope.payload == PersonalChatSent(**{**body, "target_members": tuple(body["target_members"])})
    assert envelope.payload.message_type == "text"
    assert envelope.payload.conversation_id is None
    assert envelope.user_id == V1_ENVELOPE["userId"]


def test_old_session_events_decode_with_defaults() -> None:
    connected = _v1_bytes({**V1_ENVELOPE, "name": "userConnected", "payload": ("chat.events.userConnected", {})})
    assert CODEC.decode(connected).payload == UserConnected()
    disconnected = _v1_bytes(
        {
            **V1_ENVELOPE,
            "name": "userDisconnected",
            "payload": ("chat.events.userDisconnected", {"reason": "bye", "code": 1000, "forced": False}),
        }
    )
    assert CODEC.decode(disconnected).payload == UserDisconnected(reason="bye", code=1000, forced=False)


def test_v2_bytes_of_every_v2_event_decode_with_the_current_reader() -> None:
    """Data written before v3 (schema id 2) still reads, field for field."""
    message = {
        "message_id": "d7d9d9fd-478f-40e6-b651-49b7f19878a2",
        "sender_id": "alice",
        "target_id": "team-1",
        "payload": "hi all",
        "target_type": "group",
        "target_members": ["alice", "bob"],
        "conversation_id": "team-1",
        "message_type": "text",
        "client_msg_id": "c-1",
        "mentions": ["bob"],
    }
    sent = _old_bytes(
        {**V1_ENVELOPE, "name": "personalChatSent", "payload": ("chat.events.personalChatSent", message)}, V2
    )
    assert CODEC.decode(sent).payload == PersonalChatSent(
        **{**message, "target_members": ("alice", "bob"), "mentions": ("bob",)}
    )
    connected = _old_bytes(
        {
            **V1_ENVELOPE,
            "name": "userConnected",
            "payload": ("chat.events.userConnected", {"edge_id": "edge-1", "device_id": "phone"}),
        },
        V2,
    )
    assert CODEC.decode(connected).payload == UserConnected(edge_id="edge-1", device_id="phone")
    limited = _old_bytes(
        {
            **V1_ENVELOPE,
            "name": "userChatRateLimited",
            "payload": (
                "chat.events.userChatRateLimited",
                {"action": "send", "limit": 5, "window_ms": 1000, "retry_after_ms": 10},
            ),
        },
        V2,
    )
    assert CODEC.decode(limited).payload == UserChatRateLimited(
        action="send", limit=5, window_ms=1000, retry_after_ms=10
    )


def _union_names(schema: dict[str, Any]) -> list[str]:
    return [r["name"] for r in next(f for f in schema["fields"] if f["name"] == "payload")["type"]]


def test_v3_adds_the_stream_events_and_the_chat_message_record() -> None:
    names = _union_names(V3.schema)
    assert names[:4] == ["personalChatSent", "userConnected", "userDisconnected", "userChatRateLimited"]
    assert len(names) == 16
    assert names == list(EVENT_TYPES)[:16], "later versions only append branches"
    stored = _payload_record(V3.schema, "messageStored")
    assert stored["fields"][0]["type"]["name"] == "ChatMessage"
    assert _payload_record(V3.schema, "messageDispatched")["fields"][-1]["type"] == "ChatMessage"
    assert backward_problems(V3.schema, V2.schema) == []


def test_v4_appends_user_typing_and_device_acked() -> None:
    """v4 only appends two branches: every v3 branch keeps its index (so its bytes)."""
    v4 = next(r for r in load_registered() if r.version == 4)
    assert v4.schema_id == 4
    names = _union_names(v4.schema)
    assert names == [*_union_names(V3.schema), *V4_EVENTS]
    assert names == list(EVENT_TYPES)[: len(names)], "EVENT_TYPES is in union order"
    assert backward_problems(v4.schema, V3.schema) == []
    typing = {f["name"]: f for f in _payload_record(v4.schema, "userTyping")["fields"]}
    assert typing["recipient_ids"]["type"] == {"type": "array", "items": "string"}
    assert typing["recipient_ids"]["default"] == []
    acked = {f["name"]: f["type"] for f in _payload_record(v4.schema, "deviceAcked")["fields"]}
    assert acked == {"device_id": "string", "seq": "long", "received_at_ms": "long"}


def test_v3_bytes_decode_with_the_current_reader() -> None:
    """Data written before v4 (schema id 3) still reads."""
    heartbeat = {"edge_id": "edge-1-0a1b2c3d", "interval_ms": 5000, "started_at_ms": 7, "sessions": 2, "stopping": True}
    data = _old_bytes({**V1_ENVELOPE, "name": "edgeHeartbeat", "payload": ("chat.events.edgeHeartbeat", heartbeat)}, V3)
    assert data[1:5] == b"\x00\x00\x00\x03"
    assert CODEC.decode(data).payload == EdgeHeartbeat(**heartbeat)


def test_every_registered_version_reads_every_older_one() -> None:
    registered = load_registered()
    assert [r.version for r in registered] == list(range(1, len(registered) + 1))
    for index, newer in enumerate(registered):
        for older in registered[:index]:
            assert backward_problems(newer.schema, older.schema) == []


def test_repository_schemas_pass_the_check() -> None:
    report = check_schemas()
    assert report.ok, report.problems


def _payload_record(schema: dict[str, Any], name: str) -> dict[str, Any]:
    union = next(f for f in schema["fields"] if f["name"] == "payload")["type"]
    return next(r for r in union if r["name"] == name)


def test_added_field_without_default_is_incompatible() -> None:
    new = copy.deepcopy(load_current_schema())
    _payload_record(new, "personalChatSent")["fields"].append({"name": "priority", "type": "int"})
    assert any("priority: added without a default" in p for p in backward_problems(new, V1.schema))


def test_added_field_with_default_is_compatible() -> None:
    new = copy.deepcopy(load_current_schema())
    _payload_record(new, "personalChatSent")["fields"].append({"name": "priority", "type": "int", "default": 0})
    assert backward_problems(new, load_current_schema()) == []


def test_changed_type_is_incompatible() -> None:
    new = copy.deepcopy(load_current_schema())
    field = next(f for f in _payload_record(new, "userDisconnected")["fields"] if f["name"] == "code")
    field["type"] = "string"
    assert any("int cannot be read as string" in p for p in backward_problems(new, load_current_schema()))


def test_promotion_is_compatible() -> None:
    new = copy.deepcopy(load_current_schema())
    field = next(f for f in _payload_record(new, "userDisconnected")["fields"] if f["name"] == "code")
    field["type"] = "long"
    assert backward_problems(new, load_current_schema()) == []


def test_removed_event_is_incompatible() -> None:
    new = copy.deepcopy(load_current_schema())
    payload = next(f for f in new["fields"] if f["name"] == "payload")
    payload["type"] = [r for r in payload["type"] if r["name"] != "userChatRateLimited"]
    assert any("userChatRateLimited" in p for p in backward_problems(new, load_current_schema()))


@pytest.fixture
def schema_copy(tmp_path: Path) -> Path:
    shutil.copytree(default_schema_dir(), tmp_path / "schemas")
    shutil.copy(ROOT / "asyncapi.yaml", tmp_path / "asyncapi.yaml")
    return tmp_path / "schemas"


def test_unregistered_change_is_reported_then_registered(schema_copy: Path) -> None:
    schema = load_current_schema(schema_copy)
    _payload_record(schema, "userConnected")["fields"].append(
        {"name": "platform", "type": ["null", "string"], "default": None}
    )
    (schema_copy / "chat.events.Envelope.avsc").write_text(json.dumps(schema), encoding="utf-8")
    report = check_schemas(schema_copy)
    assert any("schemas register" in p for p in report.problems)
    assert any("Python fields" in p for p in report.problems)  # the dataclass must grow too
    latest = len(load_registered(schema_copy))
    entry = register_current(schema_copy)
    assert entry is not None and (entry.version, entry.schema_id) == (latest + 1, latest + 1)
    assert register_current(schema_copy) is None
    assert [r.version for r in load_registered(schema_copy)] == list(range(1, latest + 2))


def test_edited_snapshot_is_detected(schema_copy: Path) -> None:
    path = schema_copy / "registry" / "chat.events.Envelope.v1.avsc"
    schema = json.loads(path.read_text())
    schema["doc"] = "rewritten history"
    path.write_text(json.dumps(schema))
    assert any("edited after registration" in p for p in check_schemas(schema_copy).problems)


def test_breaking_change_cannot_be_registered(schema_copy: Path) -> None:
    schema = load_current_schema(schema_copy)
    _payload_record(schema, "userConnected")["fields"].append({"name": "platform", "type": "string"})
    (schema_copy / "chat.events.Envelope.avsc").write_text(json.dumps(schema), encoding="utf-8")
    report = check_schemas(schema_copy, allow_unregistered=True)
    assert any("platform: added without a default" in p for p in report.problems)
