"""The JSON form of an envelope: exactly the shape of the chat-events AsyncAPI seed's example.

``{"payload": {"personalChatSent": {...}}, "id": ..., "version": ..., "name": ..., ...}``

Event fields keep their Python names; a nested record (``ChatMessage``) is an object of its
fields, an array a list, and ``bytes`` a base64 string (RFC 4648 with padding; ``null`` stays
``null``).

Used by ``chat-events consume``, the ``publish --json`` input, logs and downstream tools that
prefer JSON. Parsing checks every field and raises :class:`EventValidationError` naming it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from typing import Any

from chat_events.errors import EventValidationError
from chat_events.events.types import (
    ENVELOPE_WIRE_NAMES,
    EVENT_TYPES,
    RECORD_TYPES,
    Envelope,
    Event,
    FieldShape,
    field_shapes,
)

_WIRE_TO_ATTR = {wire: attr for attr, wire in ENVELOPE_WIRE_NAMES.items()}


@dataclasses.dataclass(frozen=True, slots=True)
class _Form:
    """How one event or record class maps to JSON: field shapes, required and known fields."""

    cls: type[Any]
    shapes: tuple[tuple[str, FieldShape], ...]
    shape_of: dict[str, FieldShape]
    required: tuple[str, ...]
    nested: str | None
    """The record name of the nested :data:`RECORD_TYPES` field type, if any field has one."""


def _form(cls: type[Any]) -> _Form:
    shapes = field_shapes(cls)
    required = tuple(
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    nested = next((str(f.type) for f in dataclasses.fields(cls) if str(f.type) in RECORD_TYPES), None)
    return _Form(cls, shapes, dict(shapes), required, nested)


_EVENT_FORMS = {name: _form(cls) for name, cls in EVENT_TYPES.items()}
_RECORD_FORMS = {name: _form(cls) for name, cls in RECORD_TYPES.items()}


def _value_to_json(value: Any, shape: FieldShape) -> Any:
    if shape == "tuple":
        return list(value)
    if shape == "record":
        return _record_to_json(value)
    if shape == "bytes" and value is not None:
        return base64.b64encode(value).decode("ascii")
    return value


def _record_to_json(record: Any) -> Any:
    form = _RECORD_FORMS.get(getattr(type(record), "RECORD_NAME", ""))
    if form is None:  # not a record (an invalid event): shown as is
        return record
    return {name: _value_to_json(getattr(record, name), shape) for name, shape in form.shapes}


def event_to_json(event: Event) -> dict[str, Any]:
    """The event's fields as JSON values: tuples become lists, nested records objects, bytes
    base64 strings (RFC 4648, with padding)."""
    out: dict[str, Any] = {}
    for name, shape in _EVENT_FORMS[event.EVENT_NAME].shapes:
        value = getattr(event, name)
        out[name] = _value_to_json(value, shape) if shape != "value" else value
    return out


def envelope_to_json(envelope: Envelope) -> dict[str, Any]:
    """The seed's JSON shape: payload first, then the envelope fields (null where absent)."""
    out: dict[str, Any] = {"payload": {envelope.name: event_to_json(envelope.payload)}}
    for attr, wire in ENVELOPE_WIRE_NAMES.items():
        out[wire] = getattr(envelope, attr)
    return out


def _value_from_json(form: _Form, key: str, value: Any, path: str) -> Any:
    shape = form.shape_of[key]
    if shape == "tuple":
        if not isinstance(value, list):
            raise EventValidationError(path, f"must be an array, got {type(value).__name__}")
        return tuple(value)
    if shape == "record":
        assert form.nested is not None
        return _from_json(_RECORD_FORMS[form.nested], value, path)
    if shape == "bytes" and value is not None:
        if not isinstance(value, str):
            raise EventValidationError(path, f"must be a base64 string, got {type(value).__name__}")
        try:
            return base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise EventValidationError(path, "is not valid base64 (RFC 4648, with padding)") from None
    return value


def _from_json(form: _Form, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise EventValidationError(path, f"must be an object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(form.shape_of))
    if unknown:
        raise EventValidationError(f"{path}.{unknown[0]}", "unknown field")
    for required in form.required:
        if required not in data:
            raise EventValidationError(f"{path}.{required}", "is required")
    kwargs = {key: _value_from_json(form, key, value, f"{path}.{key}") for key, value in data.items()}
    return form.cls(**kwargs)


def event_from_json(name: str, data: Any, *, path: str | None = None) -> Event:
    """Build the event called ``name`` from its JSON fields (structure only; see validation)."""
    path = path if path is not None else f"payload.{name}"
    form = _EVENT_FORMS.get(name)
    if form is None:
        raise EventValidationError("payload", f"unknown event {name!r}; known: {', '.join(sorted(EVENT_TYPES))}")
    event: Event = _from_json(form, data, path)
    return event


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
