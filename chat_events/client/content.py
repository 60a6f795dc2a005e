"""Typed message content for the client: one value type per gim message type (shapes and rules:
docs/protocol.md, "Message content").

    await chat.send("user", "bob", Image(url="https://cdn.example/cat.jpg", width=640, height=480))
    await chat.send("group", "team", Location(lat=52.52, lon=13.405, name="Office"))

    delivery = await chat.receive()
    delivery.body    # {"url": ..., "width": 640, "height": 480}: an object for the object types
    delivery.typed   # Image(url=..., width=640, height=480): the value type back

The edge checks every field (5 ``INVALID_FIELD`` naming it, e.g. ``content.url``); these types
only shape what is sent. A message's ``content`` on the wire is always a string: the compact JSON
of the object for the object types, which :func:`decode_content` turns back into the object.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Face:
    """An emoji or sticker: ``face_id`` (a sticker id, an emoji, or gim's integer face id)."""

    MESSAGE_TYPE: ClassVar[str] = "face"
    face_id: str | int
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Voice:
    """A voice clip: ``duration`` in seconds (> 0), ``size`` in bytes."""

    MESSAGE_TYPE: ClassVar[str] = "voice"
    url: str
    duration: float
    size: int | None = None
    mime_type: str | None = None


@dataclass(frozen=True, slots=True)
class Image:
    """An image of ``width`` x ``height`` pixels."""

    MESSAGE_TYPE: ClassVar[str] = "image"
    url: str
    width: int
    height: int
    thumbnail_url: str | None = None
    size: int | None = None
    mime_type: str | None = None


@dataclass(frozen=True, slots=True)
class File:
    """A file: its ``name`` as shown and ``size`` in bytes."""

    MESSAGE_TYPE: ClassVar[str] = "file"
    url: str
    name: str
    size: int
    mime_type: str | None = None


@dataclass(frozen=True, slots=True)
class Location:
    """A place: ``lat`` in -90..90, ``lon`` in -180..180 (degrees)."""

    MESSAGE_TYPE: ClassVar[str] = "location"
    lat: float
    lon: float
    name: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """A command for clients or bots: ``code`` (gim: below 1000 for the IM, above for applications)
    and optional ``data`` (any JSON value)."""

    MESSAGE_TYPE: ClassVar[str] = "command"
    code: int
    data: Any = None


@dataclass(frozen=True, slots=True)
class Custom:
    """Anything of the application's own: a JSON object or a string."""

    MESSAGE_TYPE: ClassVar[str] = "custom"
    data: dict[str, Any] | str


TypedContent = Face | Voice | Image | File | Location | Command | Custom
TYPED_CONTENT: dict[str, type[Any]] = {cls.MESSAGE_TYPE: cls for cls in (Face, Voice, Image, File, Location, Command)}
"""The object message types (``custom`` is either an object or a string; ``text`` a string)."""


def content_value(content: TypedContent) -> dict[str, Any] | str:
    """What ``send`` carries as ``content`` for ``content``: its fields, those left as None out."""
    if isinstance(content, Custom):
        return content.data
    values = {f.name: getattr(content, f.name) for f in dataclasses.fields(content)}
    return {name: value for name, value in values.items() if value is not None}


def outgoing(content: TypedContent | str | dict[str, Any], message_type: str | None) -> tuple[str, Any]:
    """``(message_type, content)`` of a ``send``: a typed value names its type (``message_type``
    may be omitted, or must agree); a string or an object goes as given (``text`` by default)."""
    if isinstance(content, (Face, Voice, Image, File, Location, Command, Custom)):
        if message_type is not None and message_type != content.MESSAGE_TYPE:
            raise ValueError(f"message_type {message_type!r} does not match {type(content).__name__} content")
        return content.MESSAGE_TYPE, content_value(content)
    return message_type or "text", content


def decode_content(message_type: str, content: str) -> str | dict[str, Any]:
    """A message's ``content`` as it was sent: the object for the object types (and for a
    ``custom`` content that is a JSON object), the string otherwise."""
    if message_type in TYPED_CONTENT or (message_type == "custom" and content.startswith("{")):
        try:
            value = json.loads(content)
        except ValueError:
            return content
        if isinstance(value, dict):
            return value
    return content


def typed_content(message: dict[str, Any]) -> TypedContent | str:
    """The value type of a message (a ``message`` view: pushes, ``sync``, history): text as its
    string, the others as :class:`Image`, :class:`Location`, ... Fields a newer edge adds are
    ignored; a content that does not fit its type raises ValueError."""
    message_type = str(message.get("message_type", "text"))
    body = decode_content(message_type, str(message.get("content", "")))
    if message_type == "custom":
        return Custom(body)
    cls = TYPED_CONTENT.get(message_type)
    if cls is None:
        return str(body) if isinstance(body, str) else json.dumps(body)
    if not isinstance(body, dict):
        raise ValueError(f"{message_type} content is not an object: {str(body)[:80]!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    try:
        value: TypedContent = cls(**{k: v for k, v in body.items() if k in known})
    except TypeError as exc:
        raise ValueError(f"{message_type} content does not fit: {exc}") from None
    return value
