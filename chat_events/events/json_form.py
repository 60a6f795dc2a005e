"""The JSON form of an envelope: exactly the shape of the chat-events AsyncAPI seed's example.

``{"payload": {"personalChatSent": {...}}, "id": ..., "version": ..., "name": ..., ...}``

Used by ``chat-events consume``, the ``publish --json`` input, logs and downstream tools that
prefer JSON. Parsing checks every field and raises :class:`EventValidationError` naming it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from chat_events.errors import EventValidationError
from chat_events.events.types import ENVELOPE_WIRE_NAMES, EVENT_TYPES, Envelope, Event

_WIRE_TO_ATTR = {wire: attr for attr, wire in ENVELOPE_WIRE_NAMES.items()}
_TUPLE_FIELDS = {
    name: frozenset(f.name for f in dataclasses.fields(cls) if f.default == () or "tuple" in str(f.type))
    for name, cls in EVENT_TYPES.items()
}
_REQUIRED_FIELDS = {
    name: tuple(
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    for name, cls in EVENT_TYPES.items()
}
_ALL_FIELDS = {name: frozenset(f.name for f in dataclasses.fields(cls)) for name, cls in EVENT_TYPES.items()}


def event_to_json(event: Event) -> dict[str, Any]:
    """The event's fields as JSON values (tuples become lists)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def envelope_to_json(envelope: Envelope) -> dict[str, Any]:
    """The seed's JSON shape: payload first, then the envelope fields (null where absent)."""
    out: dict[str, Any] = {"payload": {envelope.name: event_to_json(envelope.payload)}}
    for attr, wire in ENVELOPE_WIRE_NAMES.items():
        out[wire] = getattr(envelope, attr)
    return out


def event_from_json(name: str, data: Any, *, path: str | None = None) -> Event:
    """Build the event called ``name`` from its JSON fields (structure only; see validation)."""
    path = path if path is not None else f"payload.{name}"
    cls = EVENT_TYPES.get(name)
    if cls is None:
        raise EventValidationError("payload", f"unknown event {name!r}; known: {', '.join(sorted(EVENT_TYPES))}")
    if not isinstance(data, dict):
        raise EventValidationError(path, f"must be an object, got {type(data).__name__}")
    unknown = sorted(set(data) - _ALL_FIELDS[name])
    if unknown:
        raise EventValidationError(f"{path}.{unknown[0]}", "unknown field")
    for required in _REQUIRED_FIELDS[name]:
        if required not in data:
            raise EventValidationError(f"{path}.{required}", "is required")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in _TUPLE_FIELDS[name]:
            if not isinstance(value, list):
                raise EventValidationError(f"{path}.{key}", f"must be an array, got {type(value).__name__}")
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def split_payload(data: Any) -> tuple[str, Any]:
    """``{"personalChatSent": {...}}`` -> ``("personalChatSent", {...})``; exactly one key."""
    if not isinstance(data, dict):
        raise EventValidationError("payload", f"must be an object, got {type(data).__name__}")
    if len(data) != 1:
        raise EventValidationError("payload", f"must hold exactly one event, got {len(data)}")
    ((name, body),) = data.items()
    return name, body


def envelope_from_json(data: Any) -> Envelope:
    """Parse the seed's JSON shape into an :class:`Envelope` (structure only; see validation)."""
    if not isinstance(data, dict):
        raise EventValidationError("", f"envelope must be a JSON object, got {type(data).__name__}")
    if "payload" not in data:
        raise EventValidationError("payload", "is required")
    name, body = split_payload(data["payload"])
    event = event_from_json(name, body)
    kwargs: dict[str, Any] = {}
    for wire, value in data.items():
        if wire == "payload":
            continue
        attr = _WIRE_TO_ATTR.get(wire)
        if attr is None:
            raise EventValidationError(wire, "unknown envelope field")
        kwargs[attr] = value
    for required in ("id", "version", "name", "namespace", "timestamp"):
        if required not in kwargs:
            raise EventValidationError(ENVELOPE_WIRE_NAMES[required], "is required")
    return Envelope(payload=event, **kwargs)
