"""asyncapi.yaml documents exactly the declared topics and events, and the official tooling accepts it.

The structural tests read the YAML directly; ``test_official_asyncapi_tooling_accepts_and_renders``
runs ``tools/asyncapi/check.mjs`` (official @asyncapi/parser + avro-schema-parser, then the HTML
generator), which needs ``npm ci`` in tools/asyncapi first (CI does it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from chat_events.events import envelope_from_json, envelope_to_json, validate_envelope
from chat_events.events.types import EVENT_TYPES
from chat_events.settings import Settings
from chat_events.topics import (
    EDGE_DELIVERY,
    TOPICS,
    TopicSpec,
    edge_topic_name,
    key_of,
    topic_of_event,
    topics_of_event,
)

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "asyncapi.yaml"
TOOLS_DIR = ROOT / "tools" / "asyncapi"
ENVELOPE_REF = "./schemas/chat.events.Envelope.avsc"
AVRO_FORMAT = re.compile(r"application/vnd\.apache\.avro(\+(json|yaml))?;version=1\.(8\.2|9\.0)")


def _spec() -> dict[str, Any]:
    with SPEC_PATH.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    assert isinstance(data, dict)
    return data


SPEC = _spec()


def _resolve(node: Any) -> Any:
    """Follow a local ``{"$ref": "#/..."}`` (repeatedly); anything else is returned as is."""
    while isinstance(node, dict) and set(node) == {"$ref"} and node["$ref"].startswith("#/"):
        target: Any = SPEC
        for part in node["$ref"][2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _channels_by_address() -> dict[str, dict[str, Any]]:
    return {channel["address"]: channel for channel in SPEC["channels"].values()}


def _all_messages() -> dict[str, dict[str, Any]]:
    """Every message reachable from a channel, by its name."""
    out: dict[str, dict[str, Any]] = {}
    for channel in SPEC["channels"].values():
        for message in channel["messages"].values():
            resolved = _resolve(message)
            out[resolved["name"]] = resolved
    return out


def _examples() -> list[tuple[str, str, dict[str, Any]]]:
    """(message name, example name, example) for every example of every message."""
    return [
        (name, example.get("name", str(index)), example)
        for name, message in sorted(_all_messages().items())
        for index, example in enumerate(message.get("examples", []))
    ]


def test_spec_version_and_info_match_the_package() -> None:
    assert SPEC["asyncapi"] in {"3.0.0", "3.1.0"}
    assert SPEC["info"]["title"] == "chat-events"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    version = re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE)
    assert version is not None
    assert SPEC["info"]["version"] == version.group(1)


def test_channels_are_exactly_the_declared_topics() -> None:
    """Template topics (one per edge) are parameterised channels: ``chat.edge.{edgeId}``."""
    assert set(_channels_by_address()) == {t.address for t in TOPICS}
    assert len(SPEC["channels"]) == len(TOPICS)


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.name)
def test_channel_parameters_are_exactly_the_address_placeholders(topic: TopicSpec) -> None:
    channel = _channels_by_address()[topic.address]
    placeholders = set(re.findall(r"\{([^}]+)\}", topic.address))
    assert set(channel.get("parameters") or {}) == placeholders
    assert bool(placeholders) == topic.per_edge
    for name in placeholders:
        parameter = channel["parameters"][name]
        assert parameter.get("description")
        for example in parameter.get("examples", []):
            assert topic.name.replace("{edge_id}", example) == edge_topic_name(example)


def test_the_edge_template_resolves_to_real_topic_names() -> None:
    assert EDGE_DELIVERY.address == "chat.edge.{edgeId}"
    example = _channels_by_address()[EDGE_DELIVERY.address]["parameters"]["edgeId"]["examples"][0]
    assert edge_topic_name(example, "acme.") == f"acme.chat.edge.{example}"


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.name)
def test_channel_carries_exactly_the_topic_events(topic: TopicSpec) -> None:
    channel = _channels_by_address()[topic.address]
    assert channel.get("description")
    names = {_resolve(message)["name"] for message in channel["messages"].values()}
    assert names == set(topic.events)
    assert set(channel["messages"]) == set(topic.events)


@pytest.mark.parametrize("topic", TOPICS, ids=lambda t: t.name)
def test_channel_kafka_binding_matches_the_topic_declaration(topic: TopicSpec) -> None:
    binding = _resolve(_channels_by_address()[topic.address]["bindings"])["kafka"]
    assert binding["partitions"] == Settings.model_fields["topic_partitions"].default
    assert binding["replicas"] == Settings.model_fields["topic_replication_factor"].default
    config = binding["topicConfiguration"]
    assert config["cleanup.policy"] == [topic.cleanup_policy]
    assert config["retention.ms"] == topic.retention_ms
    assert topic.config() == {"cleanup.policy": topic.cleanup_policy, "retention.ms": str(config["retention.ms"])}


def test_every_event_type_is_a_message() -> None:
    assert set(_all_messages()) == set(EVENT_TYPES)


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_message_payload_references_the_avro_envelope(name: str) -> None:
    message = _all_messages()[name]
    for field in ("title", "summary", "description"):
        assert message.get(field), f"{name} has no {field}"
    assert name in message["description"], "the description must name the envelope's union branch"
    payload = message["payload"]
    assert AVRO_FORMAT.fullmatch(payload["schemaFormat"]), payload["schemaFormat"]
    assert payload["schema"] == {"$ref": ENVELOPE_REF}
    assert (SPEC_PATH.parent / ENVELOPE_REF).resolve().is_file()
    kafka = _resolve(message["bindings"])["kafka"]
    assert kafka["key"]["type"] == "string"
    assert kafka["schemaIdLocation"] == "payload"
    assert kafka["schemaIdPayloadEncoding"] == "confluent"


def test_operations_send_and_receive_on_every_channel() -> None:
    actions: dict[str, set[str]] = {}
    for operation_id, operation in SPEC["operations"].items():
        channel_ref = operation["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/"), operation_id
        channel = _resolve(operation["channel"])
        actions.setdefault(channel["address"], set()).add(operation["action"])
        assert operation["messages"], operation_id
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/"), f"{operation_id}: {message['$ref']}"
    assert actions == {t.address: {"send", "receive"} for t in TOPICS}


def test_servers_embedded_and_production() -> None:
    servers = SPEC["servers"]
    assert servers["embedded"]["host"] == "127.0.0.1:9092"
    assert servers["embedded"]["protocol"] == "kafka"
    assert servers["production"]["protocol"] in {"kafka", "kafka-secure"}


def test_every_message_has_examples() -> None:
    for name, message in _all_messages().items():
        assert message.get("examples"), f"{name} has no example"


@pytest.mark.parametrize(
    ("message_name", "example"),
    [(name, example) for name, _, example in _examples()],
    ids=[f"{name}-{example_name}" for name, example_name, _ in _examples()],
)
def test_example_is_a_valid_envelope_in_json_form(message_name: str, example: dict[str, Any]) -> None:
    data = example["payload"]
    envelope = envelope_from_json(data)
    validate_envelope(envelope, max_payload_bytes=32768)
    assert envelope.name == message_name
    assert envelope_to_json(envelope) == data, "examples must be exactly the JSON form, every field present"
    for topic in topics_of_event(message_name):
        assert message_name in _channels_by_address()[topic.address]["messages"]
    assert topic_of_event(message_name) == topics_of_event(message_name)[0]
    key = key_of(envelope).decode()
    assert f"key: {key})" in example["summary"], f"the summary should state the record key {key!r}"


def test_official_asyncapi_tooling_accepts_and_renders() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; the official AsyncAPI check needs Node.js")
    if not (TOOLS_DIR / "node_modules").is_dir():
        pytest.skip("tools/asyncapi/node_modules is absent; run `npm ci` in tools/asyncapi first")
    result = subprocess.run(
        [node, str(TOOLS_DIR / "check.mjs")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"check.mjs failed:\n{result.stdout}\n{result.stderr}"
    assert "asyncapi check OK" in result.stdout
