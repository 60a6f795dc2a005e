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
from chat_events.events.types import ENVELOPE_WIRE_NAMES, EVENT_TYPES
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


def _check_types(schema: Schema, report: SchemaReport) -> None:
    """The Python event types and the Avro records must have the same fields."""
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
        if record is None:
            continue
        avro_fields = [f["name"] for f in record["fields"]]
        python_fields = [f.name for f in dataclasses.fields(cls)]
        if avro_fields != python_fields:
            report.problems.append(f"{name}: Avro fields {avro_fields} != Python fields {python_fields}")
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
    declared = {spec.name: spec for spec in TOPICS}
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
