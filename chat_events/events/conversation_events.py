"""Events of a user's conversation list (schema version 6): read progress, pin / mute / remove,
"mark everything read", and what the workers push to the user's devices and to the other members
(list changes, read receipts, delivery receipts).

Plain dataclasses, re-exported by :mod:`chat_events.events.types` (the union and ``EVENT_TYPES``).

The three a user causes (``conversationRead``, ``conversationFlagsSet``, ``allConversationsRead``)
are published by the edge to ``chat.inbox`` keyed by the user id: the partition of the user's
inbox, so they are applied by the one worker that writes the user's conversation rows, in order
with the messages arriving in them. Each is idempotent: a replay, or an older read after a newer
one, changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationRead:
    """The user ``userId`` (on ``device_id``) has read ``conversation_id`` up to ``read_seq`` (a
    conversation seq; the edge clamps it to the conversation's last stored seq). Read progress
    never goes backwards."""

    EVENT_NAME: ClassVar[str] = "conversationRead"
    NAMESPACE: ClassVar[str] = "chat.user"

    conversation_id: str
    read_seq: int
    read_at_ms: int
    device_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationFlagsSet:
    """The user ``userId`` pinned / unpinned, muted / unmuted, or removed (``hidden``) one of their
    conversations; a flag left ``None`` is unchanged. Removing hides it from the user's list only
    (nobody's messages change); a new message in it shows it again."""

    EVENT_NAME: ClassVar[str] = "conversationFlagsSet"
    NAMESPACE: ClassVar[str] = "chat.user"

    conversation_id: str
    set_at_ms: int
    pinned: bool | None = None
    muted: bool | None = None
    hidden: bool | None = None
    up_to_user_seq: int = 0
    """The user's highest inbox seq when the edge accepted it: ``hidden=true`` does not hide a
    conversation that has a message past it (that message shows it again, replays included)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AllConversationsRead:
    """The user ``userId`` marked every conversation read (bilibili ``UpdateUnflwRead``): everything
    up to ``up_to_user_seq`` of the user's inbox; messages after it stay unread."""

    EVENT_NAME: ClassVar[str] = "allConversationsRead"
    NAMESPACE: ClassVar[str] = "chat.user"

    read_at_ms: int
    up_to_user_seq: int = 0
    """The user's highest inbox seq when the edge accepted it: messages past it stay unread (a
    replay too)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadReceiptsSet:
    """The user ``userId`` turned sending read receipts on or off (WhatsApp's "read receipts"
    setting): off, the other members no longer learn how far the user has read; the user's own
    devices still sync read progress. On ``chat.inbox`` keyed by the user (the stage that applies
    their reads)."""

    EVENT_NAME: ClassVar[str] = "readReceiptsSet"
    NAMESPACE: ClassVar[str] = "chat.user"

    enabled: bool
    set_at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationChanged:
    """A row of ``recipient_id``'s conversation list as it is after a change (read, flags, a new
    message is not one of these: the message push carries it), for the edge ``edge_id`` holding
    one of the user's sessions: every device of the user learns it (read on the phone, the
    laptop's badge clears). Idempotent for the client: keep the highest ``version``."""

    EVENT_NAME: ClassVar[str] = "conversationChanged"
    NAMESPACE: ClassVar[str] = "chat.user"

    recipient_id: str
    edge_id: str
    conversation_id: str
    last_message_id: str
    last_seq: int
    read_seq: int
    unread: int
    pinned: bool
    muted: bool
    hidden: bool
    last_activity_ms: int
    version: int
    unread_mentions: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadReceiptDispatched:
    """``reader_id`` has read ``conversation_id`` up to ``read_seq``: a read receipt for the other
    members ``recipient_ids`` with a session on the edge ``edge_id`` (1:1, and groups up to
    ``CHAT_READ_RECEIPTS_MAX_GROUP`` members). Not ordered with messages: clients keep the
    highest ``read_seq`` per reader."""

    EVENT_NAME: ClassVar[str] = "readReceiptDispatched"
    NAMESPACE: ClassVar[str] = "chat.user"

    recipient_ids: tuple[str, ...]
    edge_id: str
    conversation_id: str
    reader_id: str
    read_seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryReceiptDispatched:
    """Every message of ``conversation_id`` up to ``delivered_seq`` has reached at least one
    device of ``delivered_to`` (a device acked its inbox past them): a delivery receipt for the
    senders of those messages ``recipient_ids`` with a session on the edge ``edge_id``. Sent by
    the sessions stage when a ``deviceAcked`` raises the user's highest ack over all devices. Not
    ordered with messages: clients keep the highest ``delivered_seq`` per member."""

    EVENT_NAME: ClassVar[str] = "deliveryReceiptDispatched"
    NAMESPACE: ClassVar[str] = "chat.user"

    recipient_ids: tuple[str, ...]
    edge_id: str
    conversation_id: str
    delivered_to: str
    delivered_seq: int
