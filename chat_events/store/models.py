"""Rows of the store that are not events themselves (a stored message is a
:class:`~chat_events.events.types.ChatMessage`). Plain values; no IO.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class InboxEntry:
    """One message in one user's inbox. ``user_seq`` is dense and strictly increasing per user
    and is never reused: ``(user_id, message_id)`` maps to exactly one ``user_seq``."""

    user_id: str
    user_seq: int
    message_id: str
    conversation_id: str
    conversation_seq: int
    sender_id: str
    created_at_ms: int
    mentioned: bool = False
    """The message mentions this user (an ``@`` of them): counted in ``unread_mentions``."""
    counted: bool = True
    """The entry counts as a message (``unread``, the list's last message): false for change
    entries (edits, recalls, deletes, reactions) and system messages, which are synced in order
    but never raise a badge."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationState:
    """One row of a user's conversation list.

    ``unread`` counts messages from others with ``conversation seq > read_seq``; it is changed
    only together with the inbox write that causes it (one atomic write), so replays cannot
    make it drift.

    ``hidden``: the user removed the conversation from their list (a flag, never a delete); a
    new message in it shows it again. ``version``: when the row last changed, strictly
    increasing per user (microseconds of the single writer's clock, never below the row's
    previous version + 1; :func:`chat_events.streams.conversation_logic.next_version`), so a
    client asks for "what changed since the highest version I have".
    """

    user_id: str
    conversation_id: str
    last_message_id: str
    last_seq: int
    last_user_seq: int
    last_activity_ms: int
    read_seq: int = 0
    unread: int = 0
    pinned: bool = False
    muted: bool = False
    hidden: bool = False
    version: int = 0
    unread_mentions: int = 0
    """The unread messages (as ``unread`` counts them) that mention the user: the "@ me" badge."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """One connected device of a user, held by one edge node."""

    user_id: str
    session_id: str
    edge_id: str
    device_id: str | None = None
    since_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    group_id: str
    name: str
    owner_id: str
    created_at_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Reaction:
    """One user's reaction ``emoji`` on one message: ``active`` until removed (a status, never a
    delete); the latest ``at_ms`` wins, so a replay or an older write changes nothing."""

    message_id: str
    user_id: str
    emoji: str
    active: bool
    at_ms: int


@dataclass(frozen=True, slots=True)
class WriterReads:
    """What the single writer of some keys has just read and checked before a save (the port's
    ``checked`` argument): the adapter may take it instead of reading the same rows again.

    ``max_seqs``: the committed maximum seq of every conversation (``save_messages``) or user
    (``save_inbox``) written, as the writer's seq counters hold it. ``conversations``: for
    ``save_inbox``, the stored conversation-list rows among those written (absent = new)."""

    max_seqs: Mapping[str, int]
    conversations: Mapping[tuple[str, str], ConversationState] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """A page of rows plus whether more rows follow in the same direction."""

    items: tuple[T, ...]
    has_more: bool
