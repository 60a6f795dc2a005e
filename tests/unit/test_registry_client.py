"""The Confluent-compatible registry client, over real HTTP against a minimal in-test server that
speaks the two endpoints it uses (no registry server can be installed here; with one, set
CHAT_SCHEMA_REGISTRY_URL and the integration suite uses it)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chat_events.codec import build_codec
from chat_events.codec.registry import ConfluentSchemaSource
from chat_events.codec.schemas import load_current_schema
from chat_events.errors import EventDecodeError, SchemaRegistryError
from chat_events.events import UserConnected, new_envelope
from chat_events.settings import Settings
from chat_events.topics import TOPICS


class _Registry(BaseHTTPRequestHandler):
    schemas: dict[int, str] = {}
    subjects: dict[str, list[int]] = {}

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        subject = self.path.split("/")[2]
        if body.get("schemaType") != "AVRO":
            self._reply(422, {"error_code": 42201, "message": "Invalid schema"})
            return
        text = json.dumps(json.loads(body["schema"]), sort_keys=True)
        schema_id = next((i for i, s in self.schemas.items() if s == text), None)
        if schema_id is None:
            schema_id = 100 + len(self.schemas)
            self.schemas[schema_id] = text
        self.subjects.setdefault(subject, []).append(schema_id)
        self._reply(200, {"id": schema_id})

    def do_GET(self) -> None:
        schema_id = int(self.path.rsplit("/", 1)[-1])
        if schema_id not in self.schemas:
            self._reply(404, {"error_code": 40403, "message": "Schema not found"})
            return
        self._reply(200, {"schema": self.schemas[schema_id]})


@pytest.fixture
def registry_url() -> Iterator[str]:
    _Registry.schemas, _Registry.subjects = {}, {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_codec_registers_under_topic_subjects_and_frames_the_registry_id(registry_url: str) -> None:
    codec = build_codec(Settings(schema_registry_url=registry_url, topic_prefix="acme."))
    assert codec.writer_id == 100
    declared = {f"acme.{spec.name}-value" for spec in TOPICS if not spec.per_edge}
    assert set(_Registry.subjects) == declared
    assert {"acme.chat.personal-chat-value", "acme.chat.user-events-value"} <= declared
    assert not any("{" in subject for subject in _Registry.subjects), "no subject for the per-edge template"
    data = codec.encode(new_envelope(UserConnected(edge_id="e1"), user_id="alice"))
    assert data[:5] == b"\x00\x00\x00\x00\x64"
    # A second process (fresh cache) fetches the writer schema by id to decode.
    reader = build_codec(Settings(schema_registry_url=registry_url))
    assert reader.decode(data).payload == UserConnected(edge_id="e1")


def test_unknown_id_is_a_decode_error(registry_url: str) -> None:
    codec = build_codec(Settings(schema_registry_url=registry_url))
    with pytest.raises(EventDecodeError, match="schema id 7"):
        codec.decode(b"\x00\x00\x00\x00\x07\x00")


def test_unreachable_registry_is_a_clear_error() -> None:
    source = ConfluentSchemaSource("http://127.0.0.1:9", ["x-value"], timeout_s=1)
    with pytest.raises(SchemaRegistryError, match="unreachable"):
        source.writer_id(load_current_schema())
