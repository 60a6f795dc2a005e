"""The WebSocket protocol at ``/ws``: JSON frames modelled on gim's Input/Output packets.

Client -> server (an *input* frame)::

    {"type": "send", "request_id": 7, "data": {...}}

Server -> client (an *output* frame)::

    {"type": "send", "request_id": 7, "code": 0, "message": "ok", "data": {...}}

Every input frame that carries a ``request_id`` gets exactly one output frame echoing it
(``ack`` and ``typing`` are answered only on error). Server-initiated frames (``message``,
``typing``, ``kicked``) have ``request_id`` null. ``code`` 0 is success; anything else is an
:class:`Code` with a human-readable ``message`` and, for some codes, details in ``data``.
``docs/protocol.md`` is the user-facing form of this module; a test keeps the two in line.

Parsing here is pure (text in, typed request or :class:`ProtocolError` out), so every bad
input is refused before anything touches Kafka.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from chat_events.events.content import ContentError, canonical_content
from chat_events.events.content import nested_deeper as nested_deeper
from chat_events.events.types import MESSAGE_TYPES
from chat_events.events.validation import ID_PATTERN, MAX_CLIENT_MSG_ID, MAX_MENTIONS, UUID_PATTERN

PROTOCOL_VERSION = 1


class Code(enum.IntEnum):
    """Result codes of output frames. 0, 2 and 7 are the Netalo login results."""

    OK = 0
    UNAUTHORIZED = 1
    """Missing, malformed or wrongly signed token; or a request before sign-in."""
    SESSION_EXPIRED = 2
    """The token has expired: get a new one and sign in again."""
    BAD_FRAME = 3
    """Not a JSON object, or not text."""
    UNKNOWN_TYPE = 4
    INVALID_FIELD = 5
    """A field is missing, has the wrong type or is out of range (``data.field`` names it)."""
    FRAME_TOO_LARGE = 6
    CONFLICT_LOGIN = 7
    """The same device signed in again elsewhere; this socket is closed."""
    FORBIDDEN = 8
    """Not a member of the conversation, or not allowed to do that."""
    RATE_LIMITED = 9
    """Too many requests; ``data.retry_after_ms`` says when to try again."""
    TOO_MANY_CONNECTIONS = 10
    NOT_FOUND = 11
    NOT_RECOVERABLE = 12
    """``sync`` cannot fill a gap (``data.from_seq``..``data.to_seq`` are gone); resume at ``data.resume_seq``."""
    UNAVAILABLE = 13
    """Kafka or the store did not answer in time; nothing was accepted, retry with the same ``client_msg_id``."""
    PAYLOAD_TOO_LARGE = 14
    ALREADY_SIGNED_IN = 15
    INTERNAL = 16
    TOO_LATE = 17
    """An edit or recall after its window (``CHAT_EDIT_WINDOW_S`` / ``CHAT_RECALL_WINDOW_S``)."""
    BLOCKED = 18
    """The other user does not accept your messages (a block); nothing was sent."""
    MUTED = 19
    """A group admin muted you in this group: you cannot post there until unmuted."""


class Close(enum.IntEnum):
    """WebSocket close codes the edge uses (4000-4999 are application codes)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    """The edge is shutting down: reconnect (to any edge) and ``sync``."""
    POLICY = 1008
    TOO_BIG = 1009
    INTERNAL = 1011
    TRY_AGAIN_LATER = 1013
    """This socket could not keep up with its deliveries: reconnect and ``sync``."""
    IDLE_TIMEOUT = 4000
    UNAUTHORIZED = 4001
    SESSION_EXPIRED = 4002
    ORIGIN_NOT_ALLOWED = 4003
    CONFLICT_LOGIN = 4007
    SIGN_IN_TIMEOUT = 4008
    TOO_MANY_CONNECTIONS = 4009


class ProtocolError(Exception):
    """A refused frame: what the client is told, and optionally the close code that follows."""

    def __init__(
        self,
        code: Code,
        message: str,
        *,
        data: dict[str, Any] | None = None,
        close: Close | None = None,
        frame_type: str = "error",
        request_id: Any = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data or {}
        self.close = close
        self.frame_type = frame_type
        self.request_id = request_id


# --- requests (client -> server) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignIn:
    token: str
    device_id: str


@dataclass(frozen=True, slots=True)
class Send:
    target_type: Literal["user", "group"]
    target_id: str
    message_type: str
    content: str
    """The message body as text: a string as given, an object as compact JSON."""
    client_msg_id: str
    mentions: tuple[str, ...] = ()
    reply_to: str | None = None
    """The message (of the same conversation) this one answers."""


@dataclass(frozen=True, slots=True)
class Ack:
    seq: int
    """The highest per-user seq this device has received (a device ack)."""


@dataclass(frozen=True, slots=True)
class Sync:
    seq: int | None
    """The client's last per-user seq; the answer holds what comes after it. None (not given):
    the device's stored sync progress (``store/progress.py``)."""
    limit: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    pass


@dataclass(frozen=True, slots=True)
class Typing:
    target_type: Literal["user", "group"]
    target_id: str
    state: Literal["start", "stop"]


@dataclass(frozen=True, slots=True)
class SubscribeRoom:
    room_id: str | None
    """None (or empty) unsubscribes from the current room."""
    seq: int
    """The client's last conversation seq in the room; the answer holds what comes after it."""
    limit: int


@dataclass(frozen=True, slots=True)
class Read:
    """Read progress (bilibili ``UpdateAck``): ``conversation_id`` read up to conversation ``seq``."""

    conversation_id: str
    seq: int


@dataclass(frozen=True, slots=True)
class ConversationSet:
    """Pin, mute or remove (``hidden``) conversations; ``None`` leaves a flag as it is."""

    conversation_ids: tuple[str, ...]
    pinned: bool | None
    muted: bool | None
    hidden: bool | None


@dataclass(frozen=True, slots=True)
class ReadAll:
    """Mark every conversation read (bilibili ``UpdateUnflwRead``)."""


@dataclass(frozen=True, slots=True)
class SetSettings:
    """This user's settings: ``read_receipts`` (send read receipts to the other members),
    ``show_last_seen`` (others see when the user was last online); None leaves one as it is."""

    read_receipts: bool | None
    show_last_seen: bool | None = None


Request = (
    SignIn | Send | Ack | Sync | Heartbeat | Typing | SubscribeRoom | Read | ConversationSet | ReadAll | SetSettings
)


@dataclass(frozen=True, slots=True)
class Frame:
    type: str
    request_id: Any
    request: Request


SYNC_PAGE_DEFAULT = 100
SYNC_PAGE_MAX = 500
MAX_REQUEST_ID = 128
MAX_DEVICE_ID = 128
MAX_TOKEN = 4096
DEFAULT_DEVICE_ID = "default"
"""The device of a header sign-in without ``X-Device-Id``."""
ID_RULE = "must be 1-128 characters of letters, digits, '.', '_', '@', '-' (starting with a letter or digit)"


def parse_frame(text: str | bytes, *, max_payload_bytes: int) -> Frame:
    """Parse one input frame, or raise :class:`ProtocolError` naming what is wrong."""
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ProtocolError(Code.BAD_FRAME, "frame is not valid JSON") from None
    if not isinstance(raw, dict):
        raise ProtocolError(Code.BAD_FRAME, "frame must be a JSON object")
    request_id = raw.get("request_id")
    if request_id is not None and not _valid_request_id(request_id):
        raise ProtocolError(
            Code.INVALID_FIELD, "request_id must be an integer or a short string", data={"field": "request_id"}
        )
    raw_type = raw.get("type")
    parser = _PARSERS.get(raw_type) if isinstance(raw_type, str) else None
    if parser is None:
        shown = raw_type if isinstance(raw_type, str) and len(raw_type) <= 40 else "?"
        raise ProtocolError(
            Code.UNKNOWN_TYPE,
            f"unknown frame type {shown!r}; expected one of {', '.join(sorted(_PARSERS))}",
            request_id=request_id,
        )
    frame_type = str(raw_type)
    data = raw.get("data", {})
    if data is None:
        data = {}
    try:
        if not isinstance(data, dict):
            raise _Invalid("data", "must be an object")
        request = parser(data, max_payload_bytes)
    except _Invalid as exc:
        code = Code.PAYLOAD_TOO_LARGE if exc.too_large else Code.FORBIDDEN if exc.forbidden else Code.INVALID_FIELD
        raise ProtocolError(
            code, f"{exc.field}: {exc.reason}", data={"field": exc.field}, frame_type=frame_type, request_id=request_id
        ) from None
    return Frame(frame_type, request_id, request)


def output_frame(
    frame_type: str, *, request_id: Any = None, code: Code = Code.OK, message: str = "ok", data: Any = None
) -> str:
    """One output frame as JSON text."""
    return orjson.dumps(
        {"type": frame_type, "request_id": request_id, "code": int(code), "message": message, "data": data or {}}
    ).decode()


def error_frame(error: ProtocolError) -> str:
    return output_frame(
        error.frame_type, request_id=error.request_id, code=error.code, message=error.message, data=error.data
    )


# --- field parsing -------------------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, field: str, reason: str, *, too_large: bool = False, forbidden: bool = False) -> None:
        self.field = field
        self.reason = reason
        self.too_large = too_large
        self.forbidden = forbidden


def _valid_request_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -(2**53) <= value <= 2**53
    return isinstance(value, str) and 0 < len(value) <= MAX_REQUEST_ID


def _str(data: dict[str, Any], field: str, *, max_len: int, required: bool = True) -> str | None:
    value = data.get(field)
    if value is None:
        if required:
            raise _Invalid(field, "is required")
        return None
    if not isinstance(value, str):
        raise _Invalid(field, f"must be a string, got {_type_name(value)}")
    if not value:
        raise _Invalid(field, "must not be empty")
    if len(value) > max_len:
        raise _Invalid(field, f"longer than {max_len} characters")
    return value


def _id(data: dict[str, Any], field: str) -> str:
    value = _str(data, field, max_len=128)
    assert value is not None
    if not ID_PATTERN.fullmatch(value):
        raise _Invalid(field, ID_RULE)
    return value


def _int(data: dict[str, Any], field: str, *, default: int | None = None, minimum: int = 0, maximum: int) -> int:
    value = data.get(field, default)
    if value is None:
        raise _Invalid(field, "is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(field, f"must be an integer, got {_type_name(value)}")
    if not minimum <= value <= maximum:
        raise _Invalid(field, f"must be between {minimum} and {maximum}")
    return value


def _choice(data: dict[str, Any], field: str, allowed: frozenset[str], *, default: str | None = None) -> str:
    value = data.get(field, default)
    if not isinstance(value, str) or value not in allowed:
        raise _Invalid(field, f"must be one of {', '.join(sorted(allowed))}")
    return value


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}.get(
        type(value), type(value).__name__
    )


_TARGETS = frozenset({"user", "group"})
_TYPING = frozenset({"start", "stop"})
_SEQ_MAX = 2**63 - 1


def _sign_in(data: dict[str, Any], _: int) -> SignIn:
    token = _str(data, "token", max_len=MAX_TOKEN)
    assert token is not None
    return SignIn(token, _id(data, "device_id"))


def header_device_id(value: str | None) -> str:
    """The device of a header sign-in: ``X-Device-Id`` (an id, like user ids), or
    :data:`DEFAULT_DEVICE_ID` when missing; anything else is refused (5, close 1008)."""
    if not value:
        return DEFAULT_DEVICE_ID
    if len(value) > MAX_DEVICE_ID or not ID_PATTERN.fullmatch(value):
        reason = f"longer than {MAX_DEVICE_ID} characters" if len(value) > MAX_DEVICE_ID else ID_RULE
        raise ProtocolError(
            Code.INVALID_FIELD,
            f"device_id: {reason}",
            data={"field": "device_id"},
            close=Close.POLICY,
            frame_type="sign_in",
        )
    return value


SENDER_FIELDS = ("sender_id", "from", "from_user_id")
"""Fields a client might use to claim a sender. The sender is always the signed-in user, so a
frame naming one is refused outright (FORBIDDEN) rather than silently corrected."""


def _send(data: dict[str, Any], max_payload_bytes: int) -> Send:
    claimed = next((f for f in SENDER_FIELDS if f in data), None)
    if claimed is not None:
        raise _Invalid(claimed, "the sender is the signed-in user and cannot be set", forbidden=True)
    target_type = _choice(data, "target_type", _TARGETS)
    target_id = _id(data, "target_id")
    message_type = _choice(data, "message_type", MESSAGE_TYPES, default="text")
    try:  # typed per message_type: chat_events/events/content.py
        text = canonical_content(message_type, data.get("content"))
    except ContentError as exc:
        raise _Invalid(exc.field, exc.reason) from None
    if len(text.encode()) > max_payload_bytes:
        raise _Invalid("content", f"larger than {max_payload_bytes} bytes", too_large=True)
    client_msg_id = _str(data, "client_msg_id", max_len=MAX_CLIENT_MSG_ID)
    assert client_msg_id is not None
    mentions = _mentions(data)
    reply_to = _str(data, "reply_to", max_len=36, required=False)
    if reply_to is not None and not UUID_PATTERN.fullmatch(reply_to):
        raise _Invalid("reply_to", "must be a message id (a UUID as in the message push)")
    return Send(target_type, target_id, message_type, text, client_msg_id, mentions, reply_to)  # type: ignore[arg-type]


def _mentions(data: dict[str, Any]) -> tuple[str, ...]:
    """``mentions``: an array of at most :data:`MAX_MENTIONS` user ids (default none)."""
    mentions_raw = data.get("mentions", [])
    if not isinstance(mentions_raw, list):
        raise _Invalid("mentions", f"must be an array of user ids, got {_type_name(mentions_raw)}")
    if len(mentions_raw) > MAX_MENTIONS:
        raise _Invalid("mentions", f"more than {MAX_MENTIONS} user ids")
    return tuple(_id({"mentions": m}, "mentions") for m in mentions_raw)


def _ack(data: dict[str, Any], _: int) -> Ack:
    return Ack(_int(data, "seq", maximum=_SEQ_MAX))


def _sync(data: dict[str, Any], _: int) -> Sync:
    return Sync(
        None if data.get("seq") is None else _int(data, "seq", maximum=_SEQ_MAX),
        _int(data, "limit", default=SYNC_PAGE_DEFAULT, minimum=1, maximum=SYNC_PAGE_MAX),
    )


def _heartbeat(data: dict[str, Any], _: int) -> Heartbeat:
    return Heartbeat()


def _typing(data: dict[str, Any], _: int) -> Typing:
    return Typing(_choice(data, "target_type", _TARGETS), _id(data, "target_id"), _choice(data, "state", _TYPING))  # type: ignore[arg-type]


def _subscribe_room(data: dict[str, Any], _: int) -> SubscribeRoom:
    room = data.get("room_id")
    room_id = None if room in (None, "") else _id(data, "room_id")
    return SubscribeRoom(
        room_id,
        _int(data, "seq", default=0, maximum=_SEQ_MAX),
        _int(data, "limit", default=SYNC_PAGE_DEFAULT, minimum=1, maximum=SYNC_PAGE_MAX),
    )


def _read(data: dict[str, Any], _: int) -> Read:
    conversation_id = _str(data, "conversation_id", max_len=300)
    assert conversation_id is not None
    return Read(conversation_id, _int(data, "seq", maximum=_SEQ_MAX))


def _optional_bool(data: dict[str, Any], field: str) -> bool | None:
    value = data.get(field)
    if value is not None and not isinstance(value, bool):
        raise _Invalid(field, f"must be true, false or null, got {_type_name(value)}")
    return value


def _conversation_set(data: dict[str, Any], _: int) -> ConversationSet:
    ids = data.get("conversation_ids")
    if ids is None and "conversation_id" in data:
        ids = [data["conversation_id"]]
    if not isinstance(ids, list) or not all(isinstance(i, str) and 0 < len(i) <= 300 for i in ids):
        raise _Invalid("conversation_ids", "must be an array of conversation ids (or give conversation_id)")
    return ConversationSet(
        tuple(ids), _optional_bool(data, "pinned"), _optional_bool(data, "muted"), _optional_bool(data, "hidden")
    )


def _settings(data: dict[str, Any], _: int) -> SetSettings:
    enabled = _optional_bool(data, "read_receipts")
    show_last_seen = _optional_bool(data, "show_last_seen")
    if enabled is None and show_last_seen is None:
        raise _Invalid("read_receipts", "give read_receipts or show_last_seen (true or false)")
    return SetSettings(enabled, show_last_seen)


from chat_events.api import block_frames as _block_frames  # noqa: E402 - it uses the field parsers above
from chat_events.api import message_change_frames as _change_frames  # noqa: E402 - the same
from chat_events.api import presence_frames as _presence_frames  # noqa: E402 - likewise

_PARSERS: dict[str, Any] = {
    "sign_in": _sign_in,
    "send": _send,
    "ack": _ack,
    "sync": _sync,
    "heartbeat": _heartbeat,
    "typing": _typing,
    "subscribe_room": _subscribe_room,
    "read": _read,
    "conversation_set": _conversation_set,
    "read_all": lambda _data, _max: ReadAll(),
    "settings": _settings,
    "block": lambda data, limit: _block_frames.parse_block(data, limit),
    "unblock": lambda data, limit: _block_frames.parse_unblock(data, limit),
    "presence_subscribe": lambda data, limit: _presence_frames.parse_presence_subscribe(data, limit),
    "presence_unsubscribe": lambda data, limit: _presence_frames.parse_presence_unsubscribe(data, limit),
    "edit": lambda data, limit: _change_frames.parse_edit(data, limit),
    "recall": lambda data, limit: _change_frames.parse_recall(data, limit),
    "delete": lambda data, limit: _change_frames.parse_delete(data, limit),
    "react": lambda data, limit: _change_frames.parse_react(data, limit),
}
INPUT_TYPES = frozenset(_PARSERS)
OUTPUT_ONLY_TYPES = frozenset(
    {"message", "room_message", "typing", "kicked", "error", "conversation", "receipt", "presence"}
)
