"""Changes to sent messages (schema version 7): edit, recall, delete, reactions.

Plain dataclasses, re-exported by :mod:`chat_events.events.types` (the union and ``EVENT_TYPES``).

The edge publishes each to ``chat.personal-chat`` keyed by the conversation id, the partition of
the conversation's sends, so the persist stage applies it in order with them. There it becomes a
**change entry** of the conversation: a :class:`~chat_events.events.types.ChatMessage` with its
own ``message_id`` (the ``change_id``) and conversation ``seq``, ``kind`` naming the change and
``relates_to`` the changed message, fanned out and synced like any message (so a device that was
offline learns of it from ``sync``, in conversation order). The changed message's own row is
updated too (``status``, ``payload``, ``changed_seq``), so history shows it as it is now.

``change_id`` is ``uuid5(actor, client_msg_id)``, as for sends: a retried change is the same
change, stored once. ``actor_id`` is who asks (the token's subject; the edge sets it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

DELETE_SCOPES = frozenset({"me", "everyone"})
"""``me``: hidden for the actor only; ``everyone``: gone for every member (sender, or a group admin)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageEdited:
    """``actor_id`` (the sender) replaced the content of ``message_id`` with ``payload``."""

    EVENT_NAME: ClassVar[str] = "messageEdited"
    NAMESPACE: ClassVar[str] = "chat.message"

    change_id: str
    actor_id: str
    conversation_id: str
    message_id: str
    payload: str
    client_msg_id: str
    mentions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRecalled:
    """``actor_id`` (the sender) recalled ``message_id`` for everyone (gim's recall): its content
    is gone from every read path; a "message recalled" stub stays."""

    EVENT_NAME: ClassVar[str] = "messageRecalled"
    NAMESPACE: ClassVar[str] = "chat.message"

    change_id: str
    actor_id: str
    conversation_id: str
    message_id: str
    client_msg_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDeleted:
    """``actor_id`` deleted ``message_id``: for themselves (``scope="me"``, any member) or for
    everyone (``"everyone"``: the sender, or an admin of the group)."""

    EVENT_NAME: ClassVar[str] = "messageDeleted"
    NAMESPACE: ClassVar[str] = "chat.message"

    change_id: str
    actor_id: str
    conversation_id: str
    message_id: str
    scope: str
    client_msg_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReacted:
    """``actor_id`` added (``added``) or removed a reaction ``emoji`` on ``message_id``; a user
    has at most one of each emoji on a message."""

    EVENT_NAME: ClassVar[str] = "messageReacted"
    NAMESPACE: ClassVar[str] = "chat.message"

    change_id: str
    actor_id: str
    conversation_id: str
    message_id: str
    emoji: str
    added: bool
    client_msg_id: str


MessageChange = MessageEdited | MessageRecalled | MessageDeleted | MessageReacted
MESSAGE_CHANGE_EVENTS = (MessageEdited, MessageRecalled, MessageDeleted, MessageReacted)
