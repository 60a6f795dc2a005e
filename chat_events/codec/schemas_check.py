"""The checks behind ``chat-events schemas check``: every registered version readable by its
successors, the working schema registered, the Python types matching the Avro records, and
asyncapi.yaml documenting exactly the declared topics and events."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chat_events.codec.compat import backward_problems
from chat_events.codec.schemas import (
    ENVELOPE_FILE,
    Schema,
    canonical,
    default_schema_dir,
    fingerprint,
    load_current_schema,
    load_manifest,
    load_registered,
)
from chat_events.events.types import ENVELOPE_WIRE_NAMES, EVENT_TYPES, RECORD_TYPES, field_shapes
from chat_events.topics import TOPICS


@dataclass
class SchemaReport:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_registered(schema_dir: Path, report: SchemaReport) -> list[Schema]:
    registered = load_registered(schema_dir)
    entries = {int(e["version"]): e for e in load_manifest(schema_dir)["versions"]}
    for index, entry in enumerate(registered):
        recorded = entries[entry.version].get("fingerprint")
        if recorded is not None and recorded != fingerprint(entry.schema):
            report.problems.append(f"registered version {entry.version} was edited after registration")
        for older in registered[:index]:
            for problem in backward_problems(entry.schema, older.schema):
                report.problems.append(f"v{entry.version} cannot read v{older.version} data: {problem}")
        report.lines.append(f"v{entry.version} (id {entry.schema_id}): reads all older versions")
    return [r.schema for r in registered]


def _check_working(
    schema_dir: Path, registered: list[Schema], allow_unregistered: bool, report: SchemaReport
) -> Schema:
    current = load_current_schema(schema_dir)
    if registered and canonical(registered[-1]) == canonical(current):
        report.lines.append(f"{ENVELOPE_FILE}: is the latest registered version")
        return current
    for index, older in enumerate(registered, start=1):
        for problem in backward_problems(current, older):
            report.problems.append(f"{ENVELOPE_FILE} cannot read v{index} data: {problem}")
    if not allow_unregistered:
        report.problems.append(
            f"{ENVELOPE_FILE} differs from the latest registered version: run `chat-events schemas register`"
        )
    return current


def _record_definitions(node: Any, out: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every record defined anywhere in a schema, by its short name (records used again later are
    referenced by name, so each is defined once)."""
    if isinstance(node, list):
        for item in node:
            _record_definitions(item, out)
    elif isinstance(node, dict):
        if node.get("type") == "record":
            out[str(node["name"]).rsplit(".", 1)[-1]] = node
            for f in node.get("fields", []):
                _record_definitions(f["type"], out)
        else:
            for key in ("type", "items", "values"):
                if key in node:
                    _record_definitions(node[key], out)
    return out


def _type_record_name(avro_type: Any) -> str | None:
    """The short record name an Avro field type is (inline definition or reference), else None."""
    if isinstance(avro_type, dict) and avro_type.get("type") == "record":
        return str(avro_type["name"]).rsplit(".", 1)[-1]
    if isinstance(avro_type, str):
        return avro_type.rsplit(".", 1)[-1]
    return None


def _compare_fields(name: str, record: dict[str, Any], cls: type, report: SchemaReport) -> None:
    avro_fields = [f["name"] for f in record["fields"]]
    python_fields = [f.name for f in dataclasses.fields(cls)]
    if avro_fields != python_fields:
        report.problems.append(f"{name}: Avro fields {avro_fields} != Python fields {python_fields}")
        return
    avro_types = {f["name"]: f["type"] for f in record["fields"]}
    python_types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    for attr, shape in field_shapes(cls):
        if shape == "record" and _type_record_name(avro_types[attr]) != python_types[attr]:
            report.problems.append(f"{name}.{attr}: Avro type is not the {python_types[attr]} record")


def _check_types(schema: Schema, report: SchemaReport) -> None:
    """The Python event types and the Avro records (nested records included) must have the same
    fields."""
    fields_by_name = {f["name"]: f for f in schema["fields"]}
    envelope_fields = set(fields_by_name) - {"payload"}
    if envelope_fields != set(ENVELOPE_WIRE_NAMES.values()):
        report.problems.append(
            f"envelope fields differ from Python: {sorted(envelope_fields ^ set(ENVELOPE_WIRE_NAMES.values()))}"
        )
    branches = {record["name"]: record for record in fields_by_name["payload"]["type"]}
    if set(branches) != set(EVENT_TYPES):
        report.problems.append(f"payload union {sorted(branches)} differs from event types {sorted(EVENT_TYPES)}")
    for name, cls in EVENT_TYPES.items():
        record = branches.get(name)
        if record is not None:
            _compare_fields(name, record, cls, report)
    definitions = _record_definitions(fields_by_name["payload"]["type"], {})
    for name, record_cls in RECORD_TYPES.items():
        definition = definitions.get(name)
        if definition is None:
            report.problems.append(f"record {name} is not defined in the Avro schema")
        else:
            _compare_fields(name, definition, record_cls, report)
    report.lines.append("event types: match the Avro records")


def _check_asyncapi(path: Path, report: SchemaReport) -> None:
    import yaml

    try:
        document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        report.problems.append(f"cannot read {path}: {exc}")
        return
    channels = document.get("channels") or {}
    addresses = {channel.get("address"): channel for channel in channels.values()}
    declared = {spec.address: spec for spec in TOPICS}
    if set(addresses) != set(declared):
        report.problems.append(f"asyncapi channels {sorted(map(str, addresses))} != declared topics {sorted(declared)}")
    messages = (document.get("components") or {}).get("messages") or {}
    for address, spec in declared.items():
        channel = addresses.get(address)
        if channel is None:
            continue
        names = set()
        for ref in (channel.get("messages") or {}).values():
            message = ref
            if "$ref" in ref:
                message = messages.get(ref["$ref"].rsplit("/", 1)[-1], {})
            names.add(message.get("name"))
            payload = message.get("payload") or {}
            schema_ref = (payload.get("schema") or {}).get("$ref", "")
            if not schema_ref.endswith(ENVELOPE_FILE) or "avro" not in str(payload.get("schemaFormat", "")):
                report.problems.append(f"{address}: message {message.get('name')} does not reference the Avro envelope")
        if names != set(spec.events):
            report.problems.append(
                f"{address}: asyncapi messages {sorted(map(str, names))} != events {sorted(spec.events)}"
            )
    report.lines.append(f"{path.name}: channels and messages match the declared topics")


def check_schemas(
    schema_dir: Path | None = None, *, allow_unregistered: bool = False, asyncapi_path: Path | None = None
) -> SchemaReport:
    schema_dir = schema_dir or default_schema_dir()
    report = SchemaReport()
    registered = _check_registered(schema_dir, report)
    current = _check_working(schema_dir, registered, allow_unregistered, report)
    _check_types(current, report)
    asyncapi_path = asyncapi_path or schema_dir.parent / "asyncapi.yaml"
    if asyncapi_path.is_file():
        _check_asyncapi(asyncapi_path, report)
    else:
        report.problems.append(f"{asyncapi_path} not found")
    return report
