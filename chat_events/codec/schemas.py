"""The repository's own schema registry: ``schemas/registry/manifest.json`` plus one snapshot
file per registered version. Ids written in the Confluent frame come from here unless a
Confluent-compatible registry URL is configured.

The working copy of the envelope schema is ``schemas/chat.events.Envelope.avsc``; it must equal
the latest registered snapshot (``chat-events schemas check``), or be registered as a new,
backward-compatible version (``chat-events schemas register``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chat_events.errors import SchemaRegistryError

ENVELOPE_SUBJECT = "chat.events.Envelope"
ENVELOPE_FILE = "chat.events.Envelope.avsc"
REGISTRY_DIR = "registry"
MANIFEST_FILE = "manifest.json"

Schema = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RegisteredSchema:
    """One registered version of the envelope schema and the id that frames its data."""

    version: int
    schema_id: int
    schema: Schema


def default_schema_dir() -> Path:
    """``chat_events/schemas``: a symlink to the repository's ``schemas/`` in a checkout, a
    copy inside the wheel otherwise. Resolved, so its parent is the repository root."""
    return (Path(__file__).resolve().parents[1] / "schemas").resolve()


def canonical(schema: Schema) -> str:
    """A stable text form for equality checks (key order and whitespace ignored)."""
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def fingerprint(schema: Schema) -> str:
    """sha256 of the canonical JSON text (docs and defaults included, unlike Avro's own
    parsing-canonical fingerprint): any edit of a registered snapshot changes it."""
    return hashlib.sha256(canonical(schema).encode()).hexdigest()


def load_current_schema(schema_dir: Path | None = None) -> Schema:
    """The working copy of the envelope schema."""
    path = (schema_dir or default_schema_dir()) / ENVELOPE_FILE
    try:
        loaded: Schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaRegistryError(f"cannot read envelope schema {path}: {exc}") from exc
    return loaded


def load_manifest(schema_dir: Path | None = None) -> dict[str, Any]:
    path = (schema_dir or default_schema_dir()) / REGISTRY_DIR / MANIFEST_FILE
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaRegistryError(f"cannot read schema manifest {path}: {exc}") from exc
    return manifest


def load_registered(schema_dir: Path | None = None) -> list[RegisteredSchema]:
    """Every registered version, oldest first."""
    base = (schema_dir or default_schema_dir()) / REGISTRY_DIR
    out: list[RegisteredSchema] = []
    for entry in load_manifest(schema_dir)["versions"]:
        path = base / entry["file"]
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SchemaRegistryError(f"cannot read registered schema {path}: {exc}") from exc
        out.append(RegisteredSchema(version=int(entry["version"]), schema_id=int(entry["id"]), schema=schema))
    ids = [r.schema_id for r in out]
    if len(set(ids)) != len(ids):
        raise SchemaRegistryError(f"duplicate schema ids in manifest: {ids}")
    return sorted(out, key=lambda r: r.version)


def register_current(schema_dir: Path | None = None) -> RegisteredSchema | None:
    """Append the working copy as a new version (caller checked compatibility).

    Returns the new entry, or ``None`` when the working copy is already the latest version.
    """
    schema_dir = schema_dir or default_schema_dir()
    current = load_current_schema(schema_dir)
    registered = load_registered(schema_dir)
    if registered and canonical(registered[-1].schema) == canonical(current):
        return None
    version = (registered[-1].version + 1) if registered else 1
    schema_id = max((r.schema_id for r in registered), default=0) + 1
    file_name = f"{ENVELOPE_SUBJECT}.v{version}.avsc"
    (schema_dir / REGISTRY_DIR / file_name).write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
    manifest = load_manifest(schema_dir)
    manifest["versions"].append(
        {"version": version, "id": schema_id, "file": file_name, "fingerprint": fingerprint(current)}
    )
    (schema_dir / REGISTRY_DIR / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return RegisteredSchema(version=version, schema_id=schema_id, schema=current)
