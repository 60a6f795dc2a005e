"""Backward compatibility of Avro schemas: can a reader with the new schema decode data written
with the old one? A pure function over parsed schemas, implementing Avro's resolution rules
(records by field name with defaults, union branches, enum symbols, numeric promotion).
"""

from __future__ import annotations

from typing import Any

from fastavro.schema import expand_schema, parse_schema

PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"int", "long", "float", "double"}),
    "long": frozenset({"long", "float", "double"}),
    "float": frozenset({"float", "double"}),
    "double": frozenset({"double"}),
    "string": frozenset({"string", "bytes"}),
    "bytes": frozenset({"bytes", "string"}),
    "boolean": frozenset({"boolean"}),
    "null": frozenset({"null"}),
}
"""writer primitive -> reader primitives that can read it."""


def _type_name(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "union"
    return str(schema["type"])


def _named(schema: Any) -> str | None:
    if isinstance(schema, dict) and schema.get("type") in ("record", "enum", "fixed"):
        return str(schema["name"])
    return None


def _problems(reader: Any, writer: Any, path: str) -> list[str]:
    r_type, w_type = _type_name(reader), _type_name(writer)
    if w_type == "union":
        out: list[str] = []
        for branch in writer:
            out += _problems(reader, branch, f"{path}<{_named(branch) or _type_name(branch)}>")
        return out
    if r_type == "union":
        candidates = [b for b in reader if _named(b) is not None and _named(b) == _named(writer)]
        candidates = candidates or [b for b in reader if _type_name(b) == w_type]
        candidates = candidates or [b for b in reader if _type_name(b) in PROMOTIONS.get(w_type, ())]
        if not candidates:
            return [f"{path}: writer type {_named(writer) or w_type} has no matching branch in the reader's union"]
        return _problems(candidates[0], writer, path)
    if w_type in PROMOTIONS:
        if r_type not in PROMOTIONS[w_type]:
            return [f"{path}: {w_type} cannot be read as {r_type}"]
        return []
    if r_type != w_type:
        return [f"{path}: {w_type} cannot be read as {r_type}"]
    if w_type == "record":
        if _named(reader) != _named(writer):
            return [f"{path}: record {_named(writer)} cannot be read as {_named(reader)}"]
        writer_fields = {f["name"]: f for f in writer["fields"]}
        out = []
        for field in reader["fields"]:
            field_path = f"{path}.{field['name']}" if path else field["name"]
            if field["name"] in writer_fields:
                out += _problems(field["type"], writer_fields[field["name"]]["type"], field_path)
            elif "default" not in field:
                out.append(f"{field_path}: added without a default")
        return out
    if w_type == "enum":
        missing = set(writer["symbols"]) - set(reader["symbols"])
        if missing and "default" not in reader:
            return [f"{path}: enum symbols {sorted(missing)} removed without a default"]
        return []
    if w_type == "array":
        return _problems(reader["items"], writer["items"], f"{path}[]")
    if w_type == "map":
        return _problems(reader["values"], writer["values"], f"{path}{{}}")
    if w_type == "fixed" and (reader["size"] != writer["size"] or _named(reader) != _named(writer)):
        return [f"{path}: fixed {_named(writer)} size/name changed"]
    return []


def backward_problems(reader: dict[str, Any], writer: dict[str, Any]) -> list[str]:
    """Why ``reader`` cannot decode data written with ``writer``; empty when it can."""
    expanded_reader = expand_schema(parse_schema(reader))
    expanded_writer = expand_schema(parse_schema(writer))
    return _problems(expanded_reader, expanded_writer, "")
