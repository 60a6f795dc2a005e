"""The client's value types, built from the ``data`` of output frames (shapes: chat_events/api/views.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from chat_events.client.content import TypedContent, decode_content, typed_content

TargetType = Literal["user", "group"]
TypingState = Literal["start", "stop"]


def _int(data: dict[str, Any], field: str, default: int | None = None) -> int:
    value = data.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field}: expected an integer, got {value!r}")
    return value


def _opt_int(data: dict[str, Any], field: str) -> int | None:
    value = data.get(field)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(data: dict[str, Any], field: str) -> str:
    value = data.get(field)
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected a string, got {value!r}")
    return value


def _obj(data: dict[str, Any], field: str) -> dict[str, Any]:
    value = data.get(field)
    if not isinstance(value, dict):
        raise ValueError(f"{field}: expected an object, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class SignInInfo:
    """``data`` of a successful ``sign_in``."""

    user_id: str
    session_id: str
    edge_id: str
    device_id: str
    heartbeat_s: float
    max_frame_bytes: int
    last_user_seq: int
    """The user's highest per-user seq at sign-in; everything up to it must come from ``sync``."""
    max_payload_bytes: int | None = None
    expires_at_ms: int | None = None
    """When the token expires (sign in again with a new one before that)."""
    protocol: int | None = None
    acked_seq: int = 0
    """This device's stored sync progress: the highest seq it acked, as the workers had stored it
    at sign-in (0 for a device that never acked, or an edge that does not say)."""

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> SignInInfo:
        heartbeat = data.get("heartbeat_s", 30)
        if isinstance(heartbeat, bool) or not isinstance(heartbeat, int | float) or heartbeat <= 0:
            raise ValueError(f"heartbeat_s: expected a positive number, got {heartbeat!r}")
        return cls(
            user_id=_str(data, "user_id"),
            session_id=_str(data, "session_id"),
            edge_id=str(data.get("edge_id", "")),
            device_id=str(data.get("device_id", "")),
            heartbeat_s=float(heartbeat),
            max_frame_bytes=_int(data, "max_frame_bytes", 64 * 1024),
            last_user_seq=_int(data, "last_user_seq", 0),
            max_payload_bytes=_opt_int(data, "max_payload_bytes"),
            expires_at_ms=_opt_int(data, "expires_at_ms"),
            protocol=_opt_int(data, "protocol"),
            acked_seq=_opt_int(data, "acked_seq") or 0,
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message delivered to this user: ``user_seq`` (dense per user) and the message view."""

    user_seq: int
    message: dict[str, Any]

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Delivery:
        return cls(_int(data, "user_seq"), _obj(data, "message"))

    @property
    def conversation_id(self) -> str:
        return str(self.message.get("conversation_id", ""))

    @property
    def sender_id(self) -> str:
        return str(self.message.get("sender_id", ""))

    @property
    def content(self) -> str:
        return str(self.message.get("content", ""))

    @property
    def body(self) -> str | dict[str, Any]:
        """The content as sent: an object for the object message types, else the string."""
        return decode_content(str(self.message.get("message_type", "text")), self.content)

    @property
    def typed(self) -> TypedContent | str:
        """The content as its value type (:class:`~chat_events.client.content.Image`, ...), text as a string."""
        return typed_content(self.message)


@dataclass(frozen=True, slots=True)
class SendResult:
    """``data`` of a ``send`` reply. ``seq`` is the conversation seq, None if not known yet."""

    message_id: str
    conversation_id: str
    seq: int | None
    duplicate: bool

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> SendResult:
        seq = data.get("seq")
        return cls(
            message_id=_str(data, "message_id"),
            conversation_id=_str(data, "conversation_id"),
            seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
            duplicate=bool(data.get("duplicate", False)),
        )


@dataclass(frozen=True, slots=True)
class SyncPage:
    """``data`` of a ``sync`` reply: deliveries after the requested seq, ascending."""

    messages: tuple[Delivery, ...]
    has_more: bool
    last_seq: int
    after_seq: int | None = None
    """The seq the page follows (the one asked for, or the device's stored progress for a
    ``sync`` without one); None from an edge that does not say."""

    @classmethod
    def from_data(cls, data: dict[str, Any], requested_seq: int | None) -> SyncPage:
        raw = data.get("messages", [])
        if not isinstance(raw, list):
            raise ValueError("messages: expected an array")
        messages = tuple(Delivery.from_data(item) for item in raw if isinstance(item, dict))
        after = _opt_int(data, "after_seq")
        after = requested_seq if after is None else after
        last = _int(data, "last_seq", after)
        return cls(messages, bool(data.get("has_more", False)), last, after)


@dataclass(frozen=True, slots=True)
class TypingEvent:
    """A ``typing`` push: ``user_id`` started or stopped typing in ``conversation_id``."""

    conversation_id: str
    user_id: str
    target_type: str
    target_id: str
    state: str

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> TypingEvent:
        return cls(
            conversation_id=str(data.get("conversation_id", "")),
            user_id=_str(data, "user_id"),
            target_type=str(data.get("target_type", "")),
            target_id=str(data.get("target_id", "")),
            state=_str(data, "state"),
        )


@dataclass(frozen=True, slots=True)
class RoomMessage:
    """A ``room_message`` push (read-fan-out room); ``seq`` is the conversation seq."""

    room_id: str
    message: dict[str, Any]

    @property
    def seq(self) -> int:
        value = self.message.get("seq")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> RoomMessage:
        return cls(_str(data, "room_id"), _obj(data, "message"))


@dataclass(frozen=True, slots=True)
class RoomPage:
    """``data`` of a ``subscribe_room`` reply: the room's messages after the requested conversation seq."""

    room_id: str | None
    messages: tuple[dict[str, Any], ...]
    has_more: bool
    last_seq: int

    @classmethod
    def from_data(cls, data: dict[str, Any], requested_seq: int) -> RoomPage:
        raw = data.get("messages", [])
        if not isinstance(raw, list):
            raise ValueError("messages: expected an array")
        room = data.get("room_id")
        return cls(
            room if isinstance(room, str) and room else None,
            tuple(item for item in raw if isinstance(item, dict)),
            bool(data.get("has_more", False)),
            _int(data, "last_seq", requested_seq),
        )
