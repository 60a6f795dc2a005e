"""Contract checks for envelopes and events: pure functions, one error type naming the field.

Every envelope is checked here before it is encoded, so bad input never reaches Kafka and the
codec never sees a value it cannot write (no fastavro tracebacks reach a caller).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from chat_events.edges import EDGE_ID_PATTERN
from chat_events.errors import EventValidationError
from chat_events.events.content import ContentError, check_payload
from chat_events.events.conversation_events import (
    AllConversationsRead,
    ConversationChanged,
    ConversationFlagsSet,
    ConversationRead,
    DeliveryReceiptDispatched,
    ReadReceiptDispatched,
    ReadReceiptsSet,
)
from chat_events.events.conversations import DIRECT_PREFIX, conversation_id_of, direct_conversation_id
from chat_events.events.group_events import GroupDissolved, GroupMemberMuted, GroupMemberRoleSet, GroupUpdated
from chat_events.events.message_events import MessageDeleted, MessageEdited, MessageReacted, MessageRecalled
from chat_events.events.presence_events import PresenceSettingsSet
from chat_events.events.types import (
    ENVELOPE_WIRE_NAMES,
    EVENT_TYPES,
    MESSAGE_STATUSES,
    MESSAGE_TYPES,
    PRESENCE_STATUSES,
    SESSION_EVENTS,
    TARGET_TYPES,
    TYPING_STATES,
    USER_EVENTS,
    ChatMessage,
    DeviceAcked,
    EdgeHeartbeat,
    Envelope,
    Event,
    GroupCreated,
    GroupMemberJoined,
    GroupMemberLeft,
    MessageDispatched,
    MessageDispatchedBatch,
    MessageFannedOut,
    MessageFannedOutBatch,
    MessageStored,
    OfflinePushRequested,
    PersonalChatSent,
    RecordDeadLettered,
    UserBlocked,
    UserChatRateLimited,
    UserConnected,
    UserDisconnected,
    UserPresenceChanged,
    UserTyping,
    UserUnblocked,
)

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
"""User, group and edge ids: 1-128 chars of letters, digits, '.', '_', '@', '-' (UUIDs included)."""

MAX_TEXT = 1024
"""Longest metadata string (reasons, client ids, trace ids...)."""
MAX_MEMBERS = 100_000
MAX_MENTIONS = 1_000
MAX_CONVERSATION_ID = 300
MAX_CLIENT_MSG_ID = 128
MAX_DEVICE_ID = 128
"""Longest device id, in characters (device ids follow :data:`ID_PATTERN`, like user ids)."""
MAX_PREVIEW = 200
"""Longest push preview, in characters."""
MAX_GROUP_NAME = 200
MAX_DEAD_LETTER_BYTES = 1_000_000
"""Most bytes of key + value a dead-lettered record may carry (the envelope must still fit under
Kafka's default 1 MiB ``message.max.bytes``); a stage truncates larger records before reporting."""
TOPIC_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,249}")
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

Check = Callable[[str, Any], None]


CONVERSATION_EVENTS = (
    ConversationRead,
    ConversationFlagsSet,
    AllConversationsRead,
    ConversationChanged,
    ReadReceiptDispatched,
    DeliveryReceiptDispatched,
    ReadReceiptsSet,
)
"""Checked by :mod:`chat_events.events.conversation_validation`."""

V7_EVENT_TYPES = (
    MessageEdited,
    MessageRecalled,
    MessageDeleted,
    MessageReacted,
    GroupUpdated,
    GroupMemberRoleSet,
    GroupMemberMuted,
    GroupDissolved,
    PresenceSettingsSet,
)
"""Checked by :mod:`chat_events.events.change_validation`."""


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


def check_enum(path: str, value: Any, allowed: frozenset[str]) -> None:
    if not isinstance(value, str) or value not in allowed:
        _fail(path, f"must be one of {sorted(allowed)}, got {value!r}")


def check_edge_id(path: str, value: Any) -> None:
    """An edge id (see :mod:`chat_events.edges`): it names the edge's topic."""
    if not isinstance(value, str):
        _fail(path, f"must be an edge id string, got {type(value).__name__}")
    if not EDGE_ID_PATTERN.fullmatch(value):
        _fail(path, "must be 1-64 characters of lower-case letters, digits, '.', '_', '-'")


def check_bytes(path: str, value: Any, *, max_len: int) -> None:
    if not isinstance(value, bytes):
        _fail(path, f"must be bytes, got {type(value).__name__}")
    if len(value) > max_len:
        _fail(path, too_large(max_len))


def too_large(max_bytes: int) -> str:
    """The one wording of a size limit, as the edge says it of ``content`` too."""
    return f"larger than {max_bytes} bytes"


def check_payload_text(path: str, value: Any, max_payload_bytes: int, *, allow_empty: bool = False) -> None:
    """A message body: a string of at most ``max_payload_bytes`` UTF-8 bytes (the limit is in
    bytes only: a body short in characters but long in bytes is refused with the same words)."""
    if not isinstance(value, str):
        _fail(path, f"must be a string, got {type(value).__name__}")
    if not allow_empty and not value:
        _fail(path, "must not be empty")
    if len(value) > max_payload_bytes or len(value.encode("utf-8", "surrogatepass")) > max_payload_bytes:
        _fail(path, too_large(max_payload_bytes))


def check_conversation_id(path: str, value: Any) -> None:
    """``dm:<a>:<b>`` with two ids in sorted order (a 1:1 conversation), or a group id."""
    check_str(path, value, max_len=MAX_CONVERSATION_ID)
    if value.startswith(DIRECT_PREFIX):
        parts = value[len(DIRECT_PREFIX) :].split(":")
        if len(parts) != 2 or not all(ID_PATTERN.fullmatch(p) for p in parts) or parts[0] > parts[1]:
            _fail(path, "must be dm:<a>:<b> of two ids in sorted order, or a group id")
    elif not ID_PATTERN.fullmatch(value):
        _fail(path, "must be dm:<a>:<b> of two ids in sorted order, or a group id")


def _check_personal_chat_sent(path: str, event: PersonalChatSent, max_payload_bytes: int) -> None:
    check_uuid(f"{path}.message_id", event.message_id)
    check_id(f"{path}.sender_id", event.sender_id)
    check_id(f"{path}.target_id", event.target_id)
    check_payload_text(f"{path}.payload", event.payload, max_payload_bytes)
    if event.target_type not in TARGET_TYPES:
        _fail(f"{path}.target_type", f"must be one of {sorted(TARGET_TYPES)}, got {event.target_type!r}")
    check_id_list(f"{path}.target_members", event.target_members, max_items=MAX_MEMBERS)
    if event.conversation_id is not None:
        check_str(f"{path}.conversation_id", event.conversation_id, max_len=MAX_CONVERSATION_ID)
        if event.conversation_id != conversation_id_of(event):
            _fail(f"{path}.conversation_id", f"does not match the target (expected {conversation_id_of(event)!r})")
    if event.message_type not in MESSAGE_TYPES:
        _fail(f"{path}.message_type", f"must be one of {sorted(MESSAGE_TYPES)}, got {event.message_type!r}")
    try:  # the payload is typed content, as the edge checks it
        check_payload(event.message_type, event.payload)
    except ContentError as exc:
        _fail(f"{path}.payload{exc.field.removeprefix('content')}", exc.reason)
    if event.client_msg_id is not None:
        check_str(f"{path}.client_msg_id", event.client_msg_id, max_len=MAX_CLIENT_MSG_ID)
    check_id_list(f"{path}.mentions", event.mentions, max_items=MAX_MENTIONS)
    if event.reply_to is not None:
        check_uuid(f"{path}.reply_to", event.reply_to)
    check_enum(f"{path}.kind", event.kind, PUBLISHED_KINDS)


PUBLISHED_KINDS = frozenset({"message", "system"})
"""Kinds a ``personalChatSent`` may carry; change entries come from the v7 change events."""


def check_chat_message(path: str, message: Any, max_payload_bytes: int) -> None:
    """A stored message (:class:`ChatMessage`) nested at ``path``."""
    if not isinstance(message, ChatMessage):
        _fail(path, f"must be a ChatMessage, got {type(message).__name__}")
    check_uuid(f"{path}.message_id", message.message_id)
    check_int(f"{path}.seq", message.seq, bounds=INT64, minimum=1)
    check_id(f"{path}.sender_id", message.sender_id)
    check_enum(f"{path}.target_type", message.target_type, TARGET_TYPES)
    check_id(f"{path}.target_id", message.target_id)
    check_str(f"{path}.conversation_id", message.conversation_id, max_len=MAX_CONVERSATION_ID)
    if message.conversation_id != conversation_id_of(message):
        _fail(f"{path}.conversation_id", f"does not match the target (expected {conversation_id_of(message)!r})")
    check_enum(f"{path}.message_type", message.message_type, MESSAGE_TYPES)
    check_enum(f"{path}.status", message.status, MESSAGE_STATUSES)
    removed = message.status in ("recalled", "deleted") or message.kind in EMPTY_KINDS
    check_payload_text(f"{path}.payload", message.payload, max_payload_bytes, allow_empty=removed)
    if message.client_msg_id is not None:
        check_str(f"{path}.client_msg_id", message.client_msg_id, max_len=MAX_CLIENT_MSG_ID)
    check_id_list(f"{path}.mentions", message.mentions, max_items=MAX_MENTIONS)
    check_int(f"{path}.sent_at_ms", message.sent_at_ms, bounds=INT64, minimum=0)
    check_int(f"{path}.stored_at_ms", message.stored_at_ms, bounds=INT64, minimum=0)
    from chat_events.events.change_validation import check_v7_message_fields  # imports this module

    check_v7_message_fields(path, message)


EMPTY_KINDS = frozenset({"edit", "recall", "delete", "delete_for_me"})
"""Change entries whose stored payload is empty: the changed message's row holds its content."""


def _check_offline_push(path: str, event: OfflinePushRequested) -> None:
    check_id(f"{path}.recipient_id", event.recipient_id)
    check_int(f"{path}.user_seq", event.user_seq, bounds=INT64, minimum=1)
    check_uuid(f"{path}.message_id", event.message_id)
    check_conversation_id(f"{path}.conversation_id", event.conversation_id)
    check_id(f"{path}.sender_id", event.sender_id)
    check_enum(f"{path}.message_type", event.message_type, MESSAGE_TYPES)
    check_str(f"{path}.preview", event.preview, max_len=MAX_PREVIEW, allow_empty=True)
    check_int(f"{path}.unread", event.unread, minimum=0)


def _check_presence(path: str, event: UserPresenceChanged) -> None:
    check_enum(f"{path}.status", event.status, PRESENCE_STATUSES)
    check_int(f"{path}.sessions", event.sessions, minimum=0)
    if (event.status == "online") != (event.sessions > 0):
        _fail(f"{path}.sessions", f"must be {'at least 1' if event.status == 'online' else '0'} when {event.status}")
    check_int(f"{path}.changed_at_ms", event.changed_at_ms, bounds=INT64, minimum=0)
    check_bool(f"{path}.show_last_seen", event.show_last_seen)


def _check_heartbeat(path: str, event: EdgeHeartbeat) -> None:
    check_edge_id(f"{path}.edge_id", event.edge_id)
    check_int(f"{path}.interval_ms", event.interval_ms, minimum=1)
    check_int(f"{path}.started_at_ms", event.started_at_ms, bounds=INT64, minimum=0)
    check_int(f"{path}.sessions", event.sessions, minimum=0)
    check_bool(f"{path}.stopping", event.stopping)


def _check_group_created(path: str, event: GroupCreated) -> None:
    check_id(f"{path}.group_id", event.group_id)
    check_str(f"{path}.name", event.name, max_len=MAX_GROUP_NAME)
    check_str(f"{path}.avatar_url", event.avatar_url, max_len=2048, allow_empty=True)
    check_str(f"{path}.description", event.description, max_len=2000, allow_empty=True)
    check_id(f"{path}.owner_id", event.owner_id)
    check_id_list(f"{path}.member_ids", event.member_ids, max_items=MAX_MEMBERS)


def _check_dead_lettered(path: str, event: RecordDeadLettered) -> None:
    check_str(f"{path}.source_topic", event.source_topic, max_len=249)
    if not TOPIC_PATTERN.fullmatch(event.source_topic):
        _fail(f"{path}.source_topic", "must be a Kafka topic name (1-249 characters of [A-Za-z0-9._-])")
    check_int(f"{path}.source_partition", event.source_partition, minimum=0)
    check_int(f"{path}.source_offset", event.source_offset, bounds=INT64, minimum=0)
    check_str(f"{path}.stage", event.stage, max_len=64)
    check_str(f"{path}.error_code", event.error_code, max_len=64)
    check_str(f"{path}.reason", event.reason)
    if event.key is not None:
        check_bytes(f"{path}.key", event.key, max_len=MAX_DEAD_LETTER_BYTES)
    check_bytes(f"{path}.value", event.value, max_len=MAX_DEAD_LETTER_BYTES - len(event.key or b""))


def _check_typing(path: str, event: UserTyping) -> None:
    check_conversation_id(f"{path}.conversation_id", event.conversation_id)
    check_enum(f"{path}.target_type", event.target_type, TARGET_TYPES)
    check_id(f"{path}.target_id", event.target_id)
    if event.target_type == "group" and event.conversation_id != event.target_id:
        _fail(f"{path}.conversation_id", f"does not match the target (expected {event.target_id!r})")
    check_enum(f"{path}.state", event.state, TYPING_STATES)
    check_id_list(f"{path}.recipient_ids", event.recipient_ids, max_items=MAX_MEMBERS)


def _check_recipients(path: str, recipient_ids: tuple[str, ...]) -> None:
    check_id_list(path, recipient_ids, max_items=MAX_MEMBERS)
    if not recipient_ids:
        _fail(path, "is empty")
    if len(set(recipient_ids)) != len(recipient_ids):
        _fail(path, "has duplicates")


def _check_dispatched_batch(path: str, event: MessageDispatchedBatch, max_payload_bytes: int) -> None:
    _check_recipients(f"{path}.recipient_ids", event.recipient_ids)
    if not isinstance(event.user_seqs, tuple) or len(event.user_seqs) != len(event.recipient_ids):
        _fail(f"{path}.user_seqs", "must hold one seq per recipient")
    for i, seq in enumerate(event.user_seqs):
        check_int(f"{path}.user_seqs[{i}]", seq, bounds=INT64, minimum=1)
    check_edge_id(f"{path}.edge_id", event.edge_id)
    check_chat_message(f"{path}.message", event.message, max_payload_bytes)


def _check_device_acked(path: str, event: DeviceAcked) -> None:
    check_id(f"{path}.device_id", event.device_id)
    check_int(f"{path}.seq", event.seq, bounds=INT64, minimum=0)
    check_int(f"{path}.received_at_ms", event.received_at_ms, bounds=INT64, minimum=0)


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
    elif isinstance(event, MessageStored):
        check_chat_message(f"{path}.message", event.message, max_payload_bytes)
    elif isinstance(event, MessageFannedOut):
        check_id(f"{path}.recipient_id", event.recipient_id)
        check_chat_message(f"{path}.message", event.message, max_payload_bytes)
    elif isinstance(event, MessageDispatched):
        check_id(f"{path}.recipient_id", event.recipient_id)
        check_int(f"{path}.user_seq", event.user_seq, bounds=INT64, minimum=1)
        check_edge_id(f"{path}.edge_id", event.edge_id)
        check_chat_message(f"{path}.message", event.message, max_payload_bytes)
    elif isinstance(event, OfflinePushRequested):
        _check_offline_push(path, event)
    elif isinstance(event, UserDisconnected):
        _check_user_disconnected(path, event)
    elif isinstance(event, UserChatRateLimited):
        _check_rate_limited(path, event)
    elif isinstance(event, UserPresenceChanged):
        _check_presence(path, event)
    elif isinstance(event, EdgeHeartbeat):
        _check_heartbeat(path, event)
    elif isinstance(event, (UserBlocked, UserUnblocked)):
        check_id(f"{path}.blocked_id", event.blocked_id)
    elif isinstance(event, GroupCreated):
        _check_group_created(path, event)
    elif isinstance(event, GroupMemberJoined):
        check_id(f"{path}.group_id", event.group_id)
        check_id(f"{path}.member_id", event.member_id)
        check_optional_id(f"{path}.added_by", event.added_by)
    elif isinstance(event, GroupMemberLeft):
        check_id(f"{path}.group_id", event.group_id)
        check_id(f"{path}.member_id", event.member_id)
        check_optional_id(f"{path}.removed_by", event.removed_by)
    elif isinstance(event, RecordDeadLettered):
        _check_dead_lettered(path, event)
    elif isinstance(event, UserTyping):
        _check_typing(path, event)
    elif isinstance(event, DeviceAcked):
        _check_device_acked(path, event)
    elif isinstance(event, MessageFannedOutBatch):
        _check_recipients(f"{path}.recipient_ids", event.recipient_ids)
        check_chat_message(f"{path}.message", event.message, max_payload_bytes)
    elif isinstance(event, MessageDispatchedBatch):
        _check_dispatched_batch(path, event, max_payload_bytes)
    elif isinstance(event, CONVERSATION_EVENTS):
        from chat_events.events.conversation_validation import check_conversation_event  # imports this module

        check_conversation_event(path, event)
    elif isinstance(event, V7_EVENT_TYPES):
        from chat_events.events.change_validation import check_v7_event  # imports this module

        check_v7_event(path, event, max_payload_bytes)
    if isinstance(event, (UserConnected, UserDisconnected)):
        if event.edge_id is not None:
            check_edge_id(f"{path}.edge_id", event.edge_id)
        check_optional_id(f"{path}.device_id", event.device_id)


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
    if envelope.name in SESSION_EVENTS and envelope.session_id is None:
        _fail("sessionId", f"is required for {envelope.name}")
    if envelope.name in USER_EVENTS:
        if envelope.user_id is None:
            _fail("userId", f"is required for {envelope.name}")
        check_id("userId", envelope.user_id)
    else:
        check_optional_id("userId", envelope.user_id)
    validate_event(event, max_payload_bytes=max_payload_bytes)
    if isinstance(event, (UserBlocked, UserUnblocked)) and event.blocked_id == envelope.user_id:
        _fail(f"payload.{event.EVENT_NAME}.blocked_id", "cannot be the blocking user (userId) itself")
    if isinstance(event, UserTyping) and event.target_type == "user" and envelope.user_id is not None:
        expected = direct_conversation_id(envelope.user_id, event.target_id)
        if event.conversation_id != expected:
            _fail(f"payload.{event.EVENT_NAME}.conversation_id", f"does not match userId and the target ({expected!r})")
