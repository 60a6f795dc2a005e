"""Typed message content (gim's message types): what ``content`` may be for each ``message_type``.

Pure functions. :func:`canonical_content` checks what a client sent and returns the payload to
store (the text as given for ``text``; for the other types the compact JSON of the checked
object, its fields in the order of :data:`FIELDS`, optional fields given as null left out).
:func:`check_payload` checks a stored payload (a ``personalChatSent`` from any producer), so a
record the edge would have refused is dead-lettered by the worker instead of stored.

=========  ==============================================================================
text       a string, not blank
face       ``{"face_id": str | int, "url"?}``: a sticker / emoji (gim's Face)
voice      ``{"url", "duration" (seconds, > 0), "size"?, "mime_type"?}``
image      ``{"url", "width", "height", "thumbnail_url"?, "size"?, "mime_type"?}``
file       ``{"url", "name", "size", "mime_type"?}``
location   ``{"lat" (-90..90), "lon" (-180..180), "name"?, "address"?}``
command    ``{"code" (int32, >= 0), "data"?}``: any JSON value as data
custom     any JSON object, or a string that is not blank
=========  ==============================================================================

The fixed types (all but text and custom) refuse unknown fields, so a typo (``lng``,
``thumbnailUrl``) is an error naming it rather than a field silently dropped. Every object
nests at most :data:`MAX_CONTENT_DEPTH` levels (the content object is level 1). The byte size of
the payload is checked by the caller (``max_payload_bytes``, code 14 at the edge).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

MAX_CONTENT_DEPTH = 32
"""Deepest nesting of an object ``content`` (the object itself is level 1): deeper structures
are refused before they are serialised (orjson.dumps stops at 254 levels, with an error)."""
MAX_URL = 2048
"""Longest URL, in characters."""
MAX_FILE_NAME = 255
MAX_PLACE_NAME = 200
MAX_ADDRESS = 500
MAX_FACE_ID = 128
MAX_PIXELS = 100_000
"""Largest image width or height."""
MAX_SIZE = 2**53 - 1
"""Largest ``size`` in bytes: the largest integer every JSON client reads exactly."""
MAX_DURATION_S = 86_400
MAX_COMMAND_CODE = 2**31 - 1
MAX_MIME_TYPE = 127
URL_SCHEMES = frozenset({"http", "https"})

_MIME = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}")
_SHOWN_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ContentError(ValueError):
    """A refused content. ``field`` is ``content`` or a path in it (``content.url``)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def nested_deeper(value: Any, limit: int) -> bool:
    """Whether JSON ``value`` nests objects/arrays more than ``limit`` levels deep (a scalar is
    level 0, ``{}`` level 1). Iterative, so any depth is measured without recursing."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def type_name(value: Any) -> str:
    """The JSON name of ``value``'s type, for error messages."""
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}.get(
        type(value), type(value).__name__
    )


# --- field checks: (path, value) -> the value to store, or ContentError ---------------------------


def _string(path: str, value: Any, max_len: int) -> str:
    if not isinstance(value, str):
        raise ContentError(path, f"must be a string, got {type_name(value)}")
    if not value.strip():
        raise ContentError(path, "must not be blank")
    if len(value) > max_len:
        raise ContentError(path, f"longer than {max_len} characters")
    if _CONTROL.search(value):
        raise ContentError(path, "must not contain control characters")
    return value


def _integer(path: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContentError(path, f"must be an integer, got {type_name(value)}")
    if not low <= value <= high:
        raise ContentError(path, f"must be between {low} and {high}")
    return value


def _number(path: str, value: Any, low: float, high: float, *, low_open: bool = False) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ContentError(path, f"must be a number, got {type_name(value)}")
    if not math.isfinite(value) or value > high or value < low or (low_open and value == low):
        low_s, high_s = f"{low:g}", f"{high:g}"
        rule = f"more than {low_s} and at most {high_s}" if low_open else f"between {low_s} and {high_s}"
        raise ContentError(path, f"must be {rule}")
    return value


def url(path: str, value: Any) -> str:
    """An absolute ``http``/``https`` URL with a host, at most :data:`MAX_URL` characters, no
    spaces or control characters (percent-encode them)."""
    text = _string(path, value, MAX_URL)
    if any(c.isspace() for c in text):
        raise ContentError(path, "must not contain spaces (percent-encode them)")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError:
        raise ContentError(path, "is not a valid URL") from None
    if parts.scheme.lower() not in URL_SCHEMES:
        raise ContentError(path, "must be an http or https URL")
    if not parts.hostname:
        raise ContentError(path, "must name a host")
    return text


def _face_id(path: str, value: Any) -> str | int:
    if isinstance(value, int) and not isinstance(value, bool):
        return _integer(path, value, 0, 2**63 - 1)
    if not isinstance(value, str):
        raise ContentError(path, f"must be a string or an integer, got {type_name(value)}")
    return _string(path, value, MAX_FACE_ID)


def _mime_type(path: str, value: Any) -> str:
    text = _string(path, value, MAX_MIME_TYPE)
    if not _MIME.fullmatch(text):
        raise ContentError(path, "must be a media type like image/png (type/subtype, no parameters)")
    return text


def _pixels(path: str, value: Any) -> int:
    return _integer(path, value, 1, MAX_PIXELS)


def _size(path: str, value: Any) -> int:
    return _integer(path, value, 0, MAX_SIZE)


def _any_json(path: str, value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Field:
    check: Callable[[str, Any], Any]
    required: bool = True


def _opt(check: Callable[[str, Any], Any]) -> Field:
    return Field(check, required=False)


FIELDS: dict[str, dict[str, Field]] = {
    "face": {"face_id": Field(_face_id), "url": _opt(url)},
    "voice": {
        "url": Field(url),
        "duration": Field(lambda p, v: _number(p, v, 0, MAX_DURATION_S, low_open=True)),
        "size": _opt(_size),
        "mime_type": _opt(_mime_type),
    },
    "image": {
        "url": Field(url),
        "width": Field(_pixels),
        "height": Field(_pixels),
        "thumbnail_url": _opt(url),
        "size": _opt(_size),
        "mime_type": _opt(_mime_type),
    },
    "file": {
        "url": Field(url),
        "name": Field(lambda p, v: _string(p, v, MAX_FILE_NAME)),
        "size": Field(_size),
        "mime_type": _opt(_mime_type),
    },
    "location": {
        "lat": Field(lambda p, v: _number(p, v, -90, 90)),
        "lon": Field(lambda p, v: _number(p, v, -180, 180)),
        "name": _opt(lambda p, v: _string(p, v, MAX_PLACE_NAME)),
        "address": _opt(lambda p, v: _string(p, v, MAX_ADDRESS)),
    },
    "command": {"code": Field(lambda p, v: _integer(p, v, 0, MAX_COMMAND_CODE)), "data": _opt(_any_json)},
}
"""The object types: their fields, in the order they are stored."""


def _fixed(message_type: str, content: Any) -> dict[str, Any]:
    fields = FIELDS[message_type]
    if not isinstance(content, dict):
        wanted = f"an object for message_type {message_type} ({_listing(fields)})"
        raise ContentError("content", f"must be {wanted}, got {type_name(content)}")
    unknown = sorted(str(k) for k in content if k not in fields)
    if unknown:
        key = unknown[0]
        path = f"content.{key}" if _SHOWN_KEY.fullmatch(key) else "content"
        raise ContentError(path, f"unknown field for message_type {message_type} (fields: {_listing(fields)})")
    out: dict[str, Any] = {}
    for name, spec in fields.items():
        value = content.get(name)
        if value is None:
            if spec.required:
                raise ContentError(f"content.{name}", "is required")
            continue
        out[name] = spec.check(f"content.{name}", value)
    return out


def _listing(fields: dict[str, Field]) -> str:
    return ", ".join(name if spec.required else f"{name}?" for name, spec in fields.items())


def canonical_content(message_type: str, content: Any) -> str:
    """The payload to store for ``content`` sent as ``message_type`` (one of the gim types), or
    :class:`ContentError` naming the field. Text and a custom string are stored as given; an
    object as compact JSON (a fixed type's fields in :data:`FIELDS` order)."""
    if isinstance(content, dict | list) and nested_deeper(content, MAX_CONTENT_DEPTH):
        raise ContentError("content", f"nested deeper than {MAX_CONTENT_DEPTH} levels")
    if message_type == "text" or (message_type == "custom" and not isinstance(content, dict)):
        if not isinstance(content, str):
            wanted = "a string" if message_type == "text" else "an object or a string"
            raise ContentError("content", f"must be {wanted}, got {type_name(content)}")
        if not content.strip():
            raise ContentError("content", "must not be blank")
        return content
    if message_type == "custom":
        return orjson.dumps(content).decode()
    if message_type not in FIELDS:
        raise ContentError("message_type", f"unknown message type {message_type[:40]!r}")
    return orjson.dumps(_fixed(message_type, content)).decode()


def check_payload(message_type: str, payload: str) -> None:
    """Check a stored payload of ``message_type`` (its size is checked elsewhere): text and
    custom not blank, the fixed types the JSON of a valid object. Raises :class:`ContentError`
    (``content`` here is the payload)."""
    if message_type in FIELDS:
        try:
            content = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise ContentError("content", f"must be the JSON of an object for message_type {message_type}") from None
        canonical_content(message_type, content)
    else:
        canonical_content(message_type, payload)
