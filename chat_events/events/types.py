"""Event types: plain dataclasses, no transport or codec imports.

Field names follow the wire contract (``schemas/chat.events.Envelope.avsc``): event payload fields
are snake_case as in the seed; envelope fields are snake_case here and camelCase on the wire
(``parent_namespace`` <-> ``parentNamespace``), mapped by :data:`ENVELOPE_WIRE_NAMES`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Literal

from chat_events.events.conversation_events import (
    AllConversationsRead,
    ConversationChanged,
    ConversationFlagsSet,
    ConversationRead,
    DeliveryReceiptDispatched,
    ReadReceiptDispatched,
    ReadReceiptsSet,
)
from chat_events.events.group_events import GroupDissolved, GroupMemberMuted, GroupMemberRoleSet, GroupUpdated
from chat_events.events.message_events import MessageDeleted, MessageEdited, MessageReacted, MessageRecalled
from chat_events.events.presence_events import PresenceSettingsSet

MESSAGE_TYPES = frozenset({"text", "face", "voice", "image", "file", "location", "command", "custom"})
"""Message types of the gim protocol: face = emoji/sticker, command = a client/bot command."""

TARGET_TYPES = frozenset({"user", "group"})

MESSAGE_KINDS = frozenset(
    {"message", "system", "edit", "recall", "delete", "delete_for_me", "reaction_add", "reaction_remove"}
)
"""What a conversation entry is (:attr:`ChatMessage.kind`): a user's ``message``; a ``system``
message (gim's sender type "system": "alice added bob", written by the workers); or a *change
entry* relating to an earlier message (``relates_to``), see
:mod:`chat_events.events.message_events`. ``delete_for_me`` entries reach only their sender."""

CHANGE_KINDS = MESSAGE_KINDS - {"message", "system"}
"""Kinds of change entries: they never count as unread and never become a list's last message."""


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
    reply_to: str | None = None
    """The message (of the same conversation) this one answers."""
    kind: str = "message"
    """``message``, or ``system`` for a system message the workers publish (group changes)."""


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


MESSAGE_STATUSES = frozenset({"normal", "edited", "recalled", "deleted"})
"""Life-cycle states of a stored message."""

PRESENCE_STATUSES = frozenset({"online", "offline"})

TYPING_STATES = frozenset({"start", "stop"})
"""States of :class:`UserTyping`: the user started or stopped typing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatMessage:
    """A message as stored: not an event, the record several events carry (Avro ``ChatMessage``).

    ``seq`` is the message's position in its conversation (1, 2, ...), assigned by the storage
    stage; ``conversation_id`` is derived from sender and target as for
    :class:`PersonalChatSent`. ``payload`` may be empty only once the message is recalled or
    deleted.
    """

    RECORD_NAME: ClassVar[str] = "ChatMessage"

    message_id: str
    conversation_id: str
    seq: int
    sender_id: str
    target_type: str
    target_id: str
    message_type: str
    payload: str
    client_msg_id: str | None = None
    mentions: tuple[str, ...] = ()
    sent_at_ms: int = 0
    stored_at_ms: int = 0
    status: str = "normal"
    kind: str = "message"
    """See :data:`MESSAGE_KINDS`."""
    relates_to: str | None = None
    """For a change entry: the message it changes (same conversation)."""
    reply_to: str | None = None
    """The message (same conversation) this one answers."""
    edited_at_ms: int = 0
    """When the content was last edited (0: never)."""
    changed_seq: int = 0
    """The seq of the last change entry applied to this message (0: none): its version, so a
    client keeps the newest state of a message it received several times."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageStored:
    """A message was durably stored with its conversation ``seq`` (the message's source of truth)."""

    EVENT_NAME: ClassVar[str] = "messageStored"
    NAMESPACE: ClassVar[str] = "chat.message"

    message: ChatMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageFannedOut:
    """A stored message was put in one recipient's inbox (one event per recipient)."""

    EVENT_NAME: ClassVar[str] = "messageFannedOut"
    NAMESPACE: ClassVar[str] = "chat.message"

    recipient_id: str
    message: ChatMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDispatched:
    """A message is sent to the edge node holding a recipient's session, with the recipient's own
    inbox sequence number ``user_seq`` (1, 2, ... per recipient)."""

    EVENT_NAME: ClassVar[str] = "messageDispatched"
    NAMESPACE: ClassVar[str] = "chat.message"

    recipient_id: str
    user_seq: int
    edge_id: str
    message: ChatMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageFannedOutBatch:
    """A stored message was put in the inboxes of several recipients whose ids map to one
    partition of ``chat.inbox`` (write fan-out of a group message: one record per inbox
    partition instead of one per member). Equivalent to one :class:`MessageFannedOut` per id in
    ``recipient_ids``, in that order."""

    EVENT_NAME: ClassVar[str] = "messageFannedOutBatch"
    NAMESPACE: ClassVar[str] = "chat.message"

    recipient_ids: tuple[str, ...]
    message: ChatMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDispatchedBatch:
    """A message is sent to the edge node holding sessions of several recipients whose ids map
    to one partition of its delivery topic; ``user_seqs[i]`` is ``recipient_ids[i]``'s inbox
    sequence number. Equivalent to one :class:`MessageDispatched` per recipient."""

    EVENT_NAME: ClassVar[str] = "messageDispatchedBatch"
    NAMESPACE: ClassVar[str] = "chat.message"

    recipient_ids: tuple[str, ...]
    user_seqs: tuple[int, ...]
    edge_id: str
    message: ChatMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class OfflinePushRequested:
    """A recipient has no live session: a push notification should be sent."""

    EVENT_NAME: ClassVar[str] = "offlinePushRequested"
    NAMESPACE: ClassVar[str] = "chat.message"

    recipient_id: str
    user_seq: int
    message_id: str
    conversation_id: str
    sender_id: str
    message_type: str
    preview: str
    unread: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UserPresenceChanged:
    """A user went online (first session) or offline (last session gone); the user is ``userId``."""

    EVENT_NAME: ClassVar[str] = "userPresenceChanged"
    NAMESPACE: ClassVar[str] = "chat.user"

    status: str
    sessions: int
    changed_at_ms: int
    show_last_seen: bool = True
    """False when the user hides their last seen: ``changed_at_ms`` of an ``offline`` change
    must not be shown to others."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EdgeHeartbeat:
    """An edge node is alive (every ``interval_ms``) or, with ``stopping``, shutting down cleanly."""

    EVENT_NAME: ClassVar[str] = "edgeHeartbeat"
    NAMESPACE: ClassVar[str] = "chat.edge"

    edge_id: str
    interval_ms: int
    started_at_ms: int
    sessions: int
    stopping: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class UserBlocked:
    """The user ``userId`` blocked ``blocked_id``: messages from it are no longer delivered."""

    EVENT_NAME: ClassVar[str] = "userBlocked"
    NAMESPACE: ClassVar[str] = "chat.user"

    blocked_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UserUnblocked:
    """The user ``userId`` lifted the block on ``blocked_id``."""

    EVENT_NAME: ClassVar[str] = "userUnblocked"
    NAMESPACE: ClassVar[str] = "chat.user"

    blocked_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupCreated:
    """A group was created with its initial members (the owner among them)."""

    EVENT_NAME: ClassVar[str] = "groupCreated"
    NAMESPACE: ClassVar[str] = "chat.group"

    group_id: str
    name: str
    owner_id: str
    member_ids: tuple[str, ...]
    avatar_url: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupMemberJoined:
    """A member joined a group (by themselves, or ``added_by`` another member)."""

    EVENT_NAME: ClassVar[str] = "groupMemberJoined"
    NAMESPACE: ClassVar[str] = "chat.group"

    group_id: str
    member_id: str
    added_by: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupMemberLeft:
    """A member left a group (by themselves, or ``removed_by`` another member)."""

    EVENT_NAME: ClassVar[str] = "groupMemberLeft"
    NAMESPACE: ClassVar[str] = "chat.group"

    group_id: str
    member_id: str
    removed_by: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordDeadLettered:
    """A stage could not process a record: the record's key and value, verbatim, and why."""

    EVENT_NAME: ClassVar[str] = "recordDeadLettered"
    NAMESPACE: ClassVar[str] = "chat.ops"

    source_topic: str
    source_partition: int
    source_offset: int
    stage: str
    error_code: str
    reason: str
    key: bytes | None = None
    value: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserTyping:
    """A user started or stopped typing in a conversation; the typing user is ``userId``.

    Ephemeral: never stored. The edge holding the typing user's socket publishes one per edge that
    holds a session of another member, to that edge's delivery topic ``chat.edge.<edge_id>``,
    keyed by ``conversation_id``; ``recipient_ids`` are the users on that edge who should see it.
    """

    EVENT_NAME: ClassVar[str] = "userTyping"
    NAMESPACE: ClassVar[str] = "chat.user"

    conversation_id: str
    target_type: str
    target_id: str
    state: str
    recipient_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceAcked:
    """A device acknowledged receiving everything up to ``seq`` in its user's inbox (a device ack,
    gim's ``MessageACK.device_ack``); the user is ``userId``, the session ``sessionId``.

    Published by the edge to ``chat.user-events``, keyed by user id, coalesced (at most one per
    device per short interval). The sessions stage stores each device's highest ack as its sync
    progress (``streams/device_acks.py``)."""

    EVENT_NAME: ClassVar[str] = "deviceAcked"
    NAMESPACE: ClassVar[str] = "chat.user"

    device_id: str
    seq: int
    received_at_ms: int


Event = (
    PersonalChatSent
    | UserConnected
    | UserDisconnected
    | UserChatRateLimited
    | MessageStored
    | MessageFannedOut
    | MessageDispatched
    | OfflinePushRequested
    | UserPresenceChanged
    | EdgeHeartbeat
    | UserBlocked
    | UserUnblocked
    | GroupCreated
    | GroupMemberJoined
    | GroupMemberLeft
    | RecordDeadLettered
    | UserTyping
    | DeviceAcked
    | MessageFannedOutBatch
    | MessageDispatchedBatch
    | ConversationRead
    | ConversationFlagsSet
    | AllConversationsRead
    | ConversationChanged
    | ReadReceiptDispatched
    | DeliveryReceiptDispatched
    | ReadReceiptsSet
    | MessageEdited
    | MessageRecalled
    | MessageDeleted
    | MessageReacted
    | GroupUpdated
    | GroupMemberRoleSet
    | GroupMemberMuted
    | GroupDissolved
    | PresenceSettingsSet
)

EVENT_TYPES: dict[str, type[Event]] = {
    cls.EVENT_NAME: cls
    for cls in (
        PersonalChatSent,
        UserConnected,
        UserDisconnected,
        UserChatRateLimited,
        MessageStored,
        MessageFannedOut,
        MessageDispatched,
        OfflinePushRequested,
        UserPresenceChanged,
        EdgeHeartbeat,
        UserBlocked,
        UserUnblocked,
        GroupCreated,
        GroupMemberJoined,
        GroupMemberLeft,
        RecordDeadLettered,
        UserTyping,
        DeviceAcked,
        MessageFannedOutBatch,
        MessageDispatchedBatch,
        ConversationRead,
        ConversationFlagsSet,
        AllConversationsRead,
        ConversationChanged,
        ReadReceiptDispatched,
        DeliveryReceiptDispatched,
        ReadReceiptsSet,
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
}
"""Event name -> event class. The names are the Avro union branch names (in union order)."""

RECORD_TYPES: dict[str, type[ChatMessage]] = {ChatMessage.RECORD_NAME: ChatMessage}
"""Nested (non-event) Avro record name -> its class; events hold them in fields."""

USER_EVENTS = frozenset(
    {
        "userConnected",
        "userDisconnected",
        "userChatRateLimited",
        "userPresenceChanged",
        "userBlocked",
        "userUnblocked",
        "userTyping",
        "deviceAcked",
        "conversationRead",
        "conversationFlagsSet",
        "allConversationsRead",
        "readReceiptsSet",
        "presenceSettingsSet",
    }
)
"""Events about one user; their envelope must carry ``userId`` (it is their key, except for
``userTyping``, keyed by its conversation)."""

SESSION_EVENTS = frozenset({"deviceAcked"})
"""Events from one session; their envelope must carry ``sessionId`` too."""

FieldShape = Literal["value", "tuple", "record", "bytes"]


def field_shapes(cls: type) -> tuple[tuple[str, FieldShape], ...]:
    """``(field name, shape)`` of an event or record class, in declaration order: ``tuple`` (an
    Avro array), ``record`` (a nested :data:`RECORD_TYPES` record), ``bytes`` (Avro bytes, maybe
    null) or ``value`` (carried as is). Codecs precompute their conversions from this."""
    out: list[tuple[str, FieldShape]] = []
    for f in dataclasses.fields(cls):
        annotation = str(f.type)
        shape: FieldShape = "value"
        if annotation.startswith("tuple["):
            shape = "tuple"
        elif annotation in RECORD_TYPES:
            shape = "record"
        elif annotation.split(" | ")[0] == "bytes":
            shape = "bytes"
        out.append((f.name, shape))
    return tuple(out)


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
