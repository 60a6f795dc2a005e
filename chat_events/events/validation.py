"""Contract checks for envelopes and events: pure functions, one error type naming the field.

Every envelope is checked here before it is encoded, so bad input never reaches Kafka and the
codec never sees a value it cannot write (no fastavro tracebacks reach a caller).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from chat_events.errors import EventValidationError
from chat_events.events.conversations import conversation_id_of
from chat_events.events.types import (
    ENVELOPE_WIRE_NAMES,
    EVENT_TYPES,
    MESSAGE_TYPES,
    TARGET_TYPES,
    USER_EVENTS,
    Envelope,
    Event,
    PersonalChatSent,
    UserChatRateLimited,
    UserConnected,
    UserDisconnected,
)

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
"""User, group and edge ids: 1-128 chars of letters, digits, '.', '_', '@', '-' (UUIDs included)."""

MAX_TEXT = 1024
"""Longest metadata string (reasons, client ids, trace ids...)."""
MAX_MEMBERS = 100_000
MAX_MENTIONS = 1_000
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

Check = Callable[[str, Any], None]


def _fail(path: str, reason: str) -> None:
    raise EventValidationError(path, reason)


def check_str(path: str, value: Any, *, max_len: int = MAX_TEXT, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        _fail(path, f"must be a string, got {type(value).__name__}")
    if not allow_empty and not value:
        _fail(path, "must not be empty")
    if len(value) > max_len:
        _fail(path, f"longer than {max_len} characters")


def check_optional_str(path: str, value: Any) -> None:
    if value is not None:
        check_str(path, value)


def check_id(path: str, value: Any) -> None:
    if not isinstance(value, str):
        _fail(path, f"must be a string id, got {type(value).__name__}")
    if not ID_PATTERN.fullmatch(value):
        _fail(path, "must be 1-128 characters of letters, digits, '.', '_', '@', '-'")


def check_optional_id(path: str, value: Any) -> None:
    if value is not None:
        check_id(path, value)


UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""A UUID in canonical lower-case 8-4-4-4-12 form."""


def check_uuid(path: str, value: Any) -> None:
    if not isinstance(value, str):
        _fail(path, f"must be a UUID string, got {type(value).__name__}")
    if not UUID_PATTERN.fullmatch(value):
        _fail(path, f"is not a UUID in canonical lower-case 8-4-4-4-12 form: {value[:64]!r}")


def check_int(path: str, value: Any, *, bounds: tuple[int, int] = INT32, minimum: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        _fail(path, f"must be an integer, got {type(value).__name__}")
    low = bounds[0] if minimum is None else max(bounds[0], minimum)
    if not low <= value <= bounds[1]:
        _fail(path, f"must be between {low} and {bounds[1]}")


def check_bool(path: str, value: Any) -> None:
    if not isinstance(value, bool):
        _fail(path, f"must be a boolean, got {type(value).__name__}")


def check_id_list(path: str, value: Any, *, max_items: int) -> None:
    if not isinstance(value, tuple | list):
        _fail(path, f"must be an array of ids, got {type(value).__name__}")
    if len(value) > max_items:
        _fail(path, f"more than {max_items} items")
    for index, item in enumerate(value):
        check_id(f"{path}[{index}]", item)


def check_timestamp(path: str, value: Any) -> None:
    check_str(path, value, max_len=40)
    if "T" not in value or not (value.endswith("Z") or (len(value) >= 6 and value[-6] in "+-")):
        _fail(path, "must be an RFC 3339 date-time with a time zone, e.g. 2019-08-24T14:15:22Z")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        _fail(path, "must be an RFC 3339 date-time with a time zone, e.g. 2019-08-24T14:15:22Z")


def _check_personal_chat_sent(path: str, event: PersonalChatSent, max_payload_bytes: int) -> None:
    check_uuid(f"{path}.message_id", event.message_id)
    check_id(f"{path}.sender_id", event.sender_id)
    check_id(f"{path}.target_id", event.target_id)
    check_str(f"{path}.payload", event.payload, max_len=max_payload_bytes)
    size = len(event.payload.encode("utf-8", "surrogatepass"))
    if size > max_payload_bytes:
        _fail(f"{path}.payload", f"{size} bytes exceeds the limit of {max_payload_bytes} bytes")
    if event.target_type not in TARGET_TYPES:
        _fail(f"{path}.target_type", f"must be one of {sorted(TARGET_TYPES)}, got {event.target_type!r}")
    check_id_list(f"{path}.target_members", event.target_members, max_items=MAX_MEMBERS)
    if event.conversation_id is not None:
        check_str(f"{path}.conversation_id", event.conversation_id, max_len=300)
        if event.conversation_id != conversation_id_of(event):
            _fail(f"{path}.conversation_id", f"does not match the target (expected {conversation_id_of(event)!r})")
    if event.message_type not in MESSAGE_TYPES:
        _fail(f"{path}.message_type", f"must be one of {sorted(MESSAGE_TYPES)}, got {event.message_type!r}")
    if event.client_msg_id is not None:
        check_str(f"{path}.client_msg_id", event.client_msg_id, max_len=128)
    check_id_list(f"{path}.mentions", event.mentions, max_items=MAX_MENTIONS)


def _check_user_disconnected(path: str, event: UserDisconnected) -> None:
    check_str(f"{path}.reason", event.reason)
    check_int(f"{path}.code", event.code)
    check_bool(f"{path}.forced", event.forced)


def _check_rate_limited(path: str, event: UserChatRateLimited) -> None:
    check_str(f"{path}.action", event.action, max_len=64)
    check_int(f"{path}.limit", event.limit, minimum=1)
    check_int(f"{path}.window_ms", event.window_ms, bounds=INT64, minimum=1)
    check_int(f"{path}.retry_after_ms", event.retry_after_ms, bounds=INT64, minimum=0)


def validate_event(event: Event, *, max_payload_bytes: int) -> None:
    """Raise :class:`EventValidationError` unless ``event`` satisfies its contract."""
    path = f"payload.{event.EVENT_NAME}"
    if isinstance(event, PersonalChatSent):
        _check_personal_chat_sent(path, event, max_payload_bytes)
    elif isinstance(event, UserDisconnected):
        _check_user_disconnected(path, event)
    elif isinstance(event, UserChatRateLimited):
        _check_rate_limited(path, event)
    if isinstance(event, (UserConnected, UserDisconnected)):
        check_optional_id(f"{path}.edge_id", event.edge_id)
        check_optional_str(f"{path}.device_id", event.device_id)


_OPTIONAL_ENVELOPE_STRINGS = tuple(
    (attr, ENVELOPE_WIRE_NAMES[attr])
    for attr in ("parent_namespace", "client_id", "trace_id", "session_id", "span_context")
)


def validate_envelope(envelope: Envelope, *, max_payload_bytes: int) -> None:
    """Raise :class:`EventValidationError` unless ``envelope`` (and its event) is valid."""
    if not isinstance(envelope, Envelope):
        _fail("", f"expected an Envelope, got {type(envelope).__name__}")
    event = envelope.payload
    event_cls = type(event)
    if EVENT_TYPES.get(getattr(event_cls, "EVENT_NAME", ""), None) is not event_cls:
        _fail("payload", f"unknown event type {event_cls.__name__}")
    check_uuid("id", envelope.id)
    check_int("version", envelope.version, minimum=1)
    if envelope.name != event.EVENT_NAME:
        _fail("name", f"must name the payload's event {event.EVENT_NAME!r}, got {envelope.name!r}")
    check_str("namespace", envelope.namespace, max_len=128)
    check_timestamp("timestamp", envelope.timestamp)
    for attr, wire in _OPTIONAL_ENVELOPE_STRINGS:
        check_optional_str(wire, getattr(envelope, attr))
    if envelope.name in USER_EVENTS:
        if envelope.user_id is None:
            _fail("userId", f"is required for {envelope.name}")
        check_id("userId", envelope.user_id)
    else:
        check_optional_id("userId", envelope.user_id)
    validate_event(event, max_payload_bytes=max_payload_bytes)
