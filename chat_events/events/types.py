"""Event types: plain dataclasses, no transport or codec imports.

Field names follow the wire contract (``schemas/chat.events.Envelope.avsc``): event payload fields
are snake_case as in the seed; envelope fields are snake_case here and camelCase on the wire
(``parent_namespace`` <-> ``parentNamespace``), mapped by :data:`ENVELOPE_WIRE_NAMES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

MESSAGE_TYPES = frozenset({"text", "face", "voice", "image", "file", "location", "command", "custom"})
"""Message types of the gim protocol: face = emoji/sticker, command = a client/bot command."""

TARGET_TYPES = frozenset({"user", "group"})


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonalChatSent:
    """A user sent a message to a user (``target_type="user"``) or a group (``"group"``).

    ``message_id`` identifies the message for its whole life: a replayed or retried envelope
    carries the same id, and every stage dedupes on it. ``conversation_id`` is the partition key.
    """

    EVENT_NAME: ClassVar[str] = "personalChatSent"
    NAMESPACE: ClassVar[str] = "chat.personal"

    message_id: str
    sender_id: str
    target_id: str
    payload: str
    target_type: str
    target_members: tuple[str, ...] = ()
    conversation_id: str | None = None
    message_type: str = "text"
    client_msg_id: str | None = None
    mentions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class UserConnected:
    """A user's device opened a session on an edge node (the session id is the envelope's)."""

    EVENT_NAME: ClassVar[str] = "userConnected"
    NAMESPACE: ClassVar[str] = "chat.user"

    edge_id: str | None = None
    device_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UserDisconnected:
    """A user's session ended; ``forced`` when the server ended it (conflict login, timeout...)."""

    EVENT_NAME: ClassVar[str] = "userDisconnected"
    NAMESPACE: ClassVar[str] = "chat.user"

    reason: str
    code: int
    forced: bool
    edge_id: str | None = None
    device_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UserChatRateLimited:
    """A user exceeded ``limit`` actions of kind ``action`` per ``window_ms``; the action was
    refused and may be retried after ``retry_after_ms`` (counted from the envelope timestamp)."""

    EVENT_NAME: ClassVar[str] = "userChatRateLimited"
    NAMESPACE: ClassVar[str] = "chat.user"

    action: str
    limit: int
    window_ms: int
    retry_after_ms: int


Event = PersonalChatSent | UserConnected | UserDisconnected | UserChatRateLimited

EVENT_TYPES: dict[str, type[Event]] = {
    cls.EVENT_NAME: cls for cls in (PersonalChatSent, UserConnected, UserDisconnected, UserChatRateLimited)
}
"""Event name -> event class. The names are the Avro union branch names."""

USER_EVENTS = frozenset({"userConnected", "userDisconnected", "userChatRateLimited"})
"""Events about one user's sessions; their envelope must carry ``userId`` (it is their key)."""

PARENT_NAMESPACE = "chat"


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """One event plus its metadata: the unit written to every chat-events topic.

    ``version`` is the major version of the event's contract; compatible additions keep it.
    """

    payload: Event
    id: str
    version: int
    name: str
    namespace: str
    timestamp: str
    parent_namespace: str | None = None
    client_id: str | None = None
    user_id: str | None = None
    trace_id: str | None = None
    session_id: str | None = None
    span_context: str | None = None


ENVELOPE_WIRE_NAMES: dict[str, str] = {
    "id": "id",
    "version": "version",
    "name": "name",
    "namespace": "namespace",
    "parent_namespace": "parentNamespace",
    "timestamp": "timestamp",
    "client_id": "clientId",
    "user_id": "userId",
    "trace_id": "traceId",
    "session_id": "sessionId",
    "span_context": "spanContext",
}
"""Python attribute -> wire (Avro/JSON) field name for every envelope field except ``payload``."""
