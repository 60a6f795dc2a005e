"""The store port: everything the stream processors and the edge read or write durably.

Two adapters implement it (embedded SQLite, Cassandra) and one contract suite
(``tests/contract/``) holds both to the same behaviour.

Rules every adapter keeps:

* **Idempotent writes.** Every write is an upsert keyed by its natural key; writing the same
  rows twice leaves the store as after the first write. Stages may see a record twice.
* **No deletes.** Recall/delete of a message, leaving a group, unblocking and ending a session
  are status updates (Cassandra tombstones are the reason).
* **Single writer per key.** Per-conversation seqs are assigned by the one worker that owns the
  conversation's partition, per-user seqs by the one that owns the user's partition; the store
  stores what it is given and reports maxima, it does not allocate.
* Methods are batch-shaped (a stream stage handles a batch of records in one call).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType

from chat_events.events.types import ChatMessage
from chat_events.store.group_models import GroupMember, GroupProfile, GroupRole, MyGroup
from chat_events.store.models import ConversationState, Group, InboxEntry, Page, Reaction, Session, WriterReads
from chat_events.store.presence_state import PresenceState
from chat_events.store.progress import DeviceProgress


class MessageStore(ABC):
    """Durable chat state. ``await open()`` before use (or ``async with``), ``close()`` after."""

    async def __aenter__(self) -> MessageStore:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    # --- messages (by conversation, ordered by seq) ---------------------------------------

    @abstractmethod
    async def find_messages(self, message_ids: Iterable[str]) -> dict[str, ChatMessage]:
        """The stored messages among ``message_ids`` (the message-id lookup; a replay reuses
        the seq found here)."""

    @abstractmethod
    async def find_client_messages(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], ChatMessage]:
        """Stored messages by ``(sender_id, client_msg_id)``: a retried send is the same message."""

    @abstractmethod
    async def max_conversation_seqs(self, conversation_ids: Iterable[str]) -> dict[str, int]:
        """Highest stored seq per conversation (0 when it has none)."""

    @abstractmethod
    async def save_messages(
        self,
        messages: Sequence[ChatMessage],
        origins: Mapping[str, str] | None = None,
        *,
        checked: WriterReads | None = None,
    ) -> None:
        """Upsert messages by ``message_id`` (and write the lookups). Re-saving a stored message
        with the same seq is a no-op; giving a stored message id a different seq, or a taken
        ``(conversation, seq)`` to another message, raises :class:`SeqConflictError`.

        ``checked``: the caller, the single writer of these conversations, has just looked every
        message up by id and by ``(sender, client_msg_id)`` and found none of them stored, and
        gives the conversations' committed maxima. The checks above are then the caller's: an
        adapter may skip the reads they need (the Cassandra adapter does; it is what its write
        path costs), and re-saving a stored message with ``checked`` is the caller's bug.

        ``origins`` maps a message id to its *origin*: the envelope id of the input record that
        stores it (its ``personalChatSent``). It is written with the message's own row, so only
        by the save that stores the message; a stored message's origin is never replaced (a
        re-save, whatever origin it passes, is the no-op above). A message saved without one
        has no origin, like every message stored before origins were recorded."""

    @abstractmethod
    async def message_origins(self, message_ids: Iterable[str]) -> dict[str, str]:
        """The origin of each stored message among ``message_ids`` (see :meth:`save_messages`);
        a message without a recorded origin, or not stored, is absent."""

    @abstractmethod
    async def get_message(self, message_id: str) -> ChatMessage | None: ...

    @abstractmethod
    async def conversation_messages(
        self, conversation_id: str, *, after_seq: int | None = None, before_seq: int | None = None, limit: int = 50
    ) -> Page[ChatMessage]:
        """Messages with ``seq > after_seq`` ascending, or with ``seq < before_seq`` descending
        (newest first). Exactly one of the two bounds is given."""

    @abstractmethod
    async def set_message_status(self, message_id: str, status: str) -> ChatMessage | None:
        """Recall/delete/edit marker as a status update; returns the updated message."""

    # --- changes to messages: edit, recall, delete, reactions (issue 16) ------------------

    @abstractmethod
    async def update_messages(self, messages: Sequence[ChatMessage]) -> None:
        """Overwrite the changeable state of stored messages, by ``message_id``: ``payload``,
        ``mentions``, ``status``, ``edited_at_ms`` and ``changed_seq`` (an edit, a recall, a
        delete for everyone). Everything else of the row (seq, sender, lookups, origin) stays.
        The caller is the single writer of the messages' conversations; writing the same state
        twice is a no-op; a message that is not stored is ignored (nothing is created)."""

    @abstractmethod
    async def save_reactions(self, reactions: Sequence[Reaction]) -> None:
        """Upsert reactions by ``(message_id, user_id, emoji)``; a row whose stored ``at_ms`` is
        newer than the one given is left as it is (last writer wins, replays change nothing)."""

    @abstractmethod
    async def reactions_of(self, message_ids: Iterable[str]) -> dict[str, dict[str, tuple[str, ...]]]:
        """Active reactions per message: emoji -> the users who reacted with it, in the order they
        did (by ``at_ms``). Messages without any active reaction are absent."""

    @abstractmethod
    async def hide_messages(self, user_id: str, message_ids: Iterable[str], *, at_ms: int) -> None:
        """Delete for me: hide messages from one user's history and sync (a row per user and
        message, never deleted; hiding again is a no-op)."""

    @abstractmethod
    async def hidden_messages(self, user_id: str, message_ids: Iterable[str]) -> frozenset[str]:
        """Which of ``message_ids`` the user has hidden (deleted for themselves)."""

    # --- per-user inbox (ordered by user seq) ---------------------------------------------

    @abstractmethod
    async def find_inbox_entries(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], InboxEntry]:
        """Existing entries by ``(user_id, message_id)``: a replay reuses the user seq found here."""

    @abstractmethod
    async def max_user_seqs(self, user_ids: Iterable[str]) -> dict[str, int]:
        """Highest user seq per user (0 when the inbox is empty)."""

    @abstractmethod
    async def get_conversations(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], ConversationState]:
        """Conversation-list rows by ``(user_id, conversation_id)``."""

    @abstractmethod
    async def save_inbox(
        self,
        entries: Sequence[InboxEntry],
        conversations: Sequence[ConversationState],
        *,
        checked: WriterReads | None = None,
    ) -> None:
        """Write inbox entries and the conversation rows they changed as one unit per user: either
        all of a user's part is visible after a crash or none of it (so unread counts cannot
        drift). An adapter may commit more at once (the embedded one commits the whole call).

        ``checked``: the caller, the single writer of these users, has just looked every entry up
        by ``(user, message)`` and found none stored, and gives the users' committed maxima and
        the stored rows of the conversations written: an adapter may skip reading them again
        (as for :meth:`save_messages`)."""

    @abstractmethod
    async def inbox_after(self, user_id: str, after_seq: int, limit: int = 100) -> Page[InboxEntry]:
        """Entries with ``user_seq > after_seq``, ascending."""

    @abstractmethod
    async def list_conversations(self, user_id: str, limit: int = 50) -> list[ConversationState]:
        """A user's conversations, most recent activity first (hidden ones included: the
        caller filters and orders them for a list, see :mod:`chat_events.api.conversation_list`)."""

    @abstractmethod
    async def mark_read(
        self, user_id: str, conversation_id: str, seq: int, *, version: int | None = None
    ) -> ConversationState | None:
        """Advance ``read_seq`` (never backwards) and recount ``unread`` from the inbox; with
        ``version``, the row's version becomes at least it. ``None`` for a row that is not there."""

    @abstractmethod
    async def set_conversation_flags(
        self,
        user_id: str,
        conversation_id: str,
        *,
        pinned: bool | None = None,
        muted: bool | None = None,
        hidden: bool | None = None,
        version: int | None = None,
    ) -> ConversationState | None:
        """Set the given flags (``None``: unchanged) and, with ``version``, raise the row's
        version to at least it. ``None`` for a row that is not there (nothing is created)."""

    # --- groups ---------------------------------------------------------------------------

    @abstractmethod
    async def save_group(self, group: Group, member_ids: Iterable[str]) -> None:
        """Create (or re-create identically) a group with its initial members."""

    @abstractmethod
    async def get_group(self, group_id: str) -> Group | None: ...

    @abstractmethod
    async def set_group_member(self, group_id: str, user_id: str, *, active: bool, at_ms: int) -> None:
        """Join (``active``) or leave; a status update, last writer by ``at_ms`` wins."""

    @abstractmethod
    async def group_members(self, group_ids: Iterable[str]) -> dict[str, frozenset[str]]:
        """Active members per group (an unknown group maps to the empty set)."""

    # --- group administration (issue 16, item 4; one writer per group: the groups stage) ---

    @abstractmethod
    async def save_group_profiles(self, profiles: Sequence[GroupProfile]) -> None:
        """Upsert each group's profile (name, avatar, description, owner, dissolved); last
        writer by ``updated_at_ms`` wins (an equal time: the later write), so a replay is a no-op."""

    @abstractmethod
    async def group_profiles(self, group_ids: Iterable[str]) -> dict[str, GroupProfile]:
        """Profiles of the groups among ``group_ids`` that exist; a group stored without one
        (made before profiles) gets one from its ``groups`` row."""

    @abstractmethod
    async def set_group_roles(self, roles: Sequence[GroupRole]) -> None:
        """Upsert each ``(group, member)`` role and mute row; last writer by ``at_ms`` wins."""

    @abstractmethod
    async def group_roles(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], GroupRole]:
        """Stored role rows by ``(group_id, user_id)`` (a member without one is a plain member)."""

    @abstractmethod
    async def group_member_states(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[bool, int]]:
        """Stored membership rows by ``(group_id, user_id)``: ``(active, updated_at_ms)`` (left
        members included; someone never in the group is absent)."""

    @abstractmethod
    async def my_groups(
        self, user_id: str, *, sort_by: str = "joined", cursor: str | None = None, limit: int = 50
    ) -> Page[MyGroup]:
        """The groups ``user_id`` is an active member of, dissolved ones left out, ordered by
        ``sort_by`` and paged by ``cursor`` (:mod:`chat_events.store.group_pages`; a bad cursor
        raises :class:`ValueError`)."""

    @abstractmethod
    async def group_member_page(
        self, group_id: str, *, after_user_id: str | None = None, limit: int = 50
    ) -> Page[GroupMember]:
        """A group's active members by user id after ``after_user_id``, with role, join time
        and mute (empty for an unknown group)."""

    # --- blocks ---------------------------------------------------------------------------

    @abstractmethod
    async def set_block(self, blocker_id: str, blocked_id: str, *, active: bool, at_ms: int) -> None:
        """Block (``active``) or unblock; a status update, last writer by ``at_ms`` wins."""

    @abstractmethod
    async def blockers_of(self, user_ids: Iterable[str]) -> dict[str, frozenset[str]]:
        """Per user, the users who currently block them."""

    @abstractmethod
    async def blocks_by(self, blocker_id: str) -> dict[str, int]:
        """Whom ``blocker_id`` currently blocks, each with the ``at_ms`` of the stored block
        (when it took effect: what arrived from them at or after it is hidden from the blocker)."""

    # --- sessions -------------------------------------------------------------------------

    @abstractmethod
    async def save_session(self, session: Session) -> None: ...

    @abstractmethod
    async def end_session(self, user_id: str, session_id: str, *, at_ms: int) -> None: ...

    @abstractmethod
    async def sessions_of(self, user_ids: Iterable[str]) -> dict[str, tuple[Session, ...]]:
        """Active sessions per user, oldest first (users without any map to ``()``)."""

    @abstractmethod
    async def sessions_on_edge(self, edge_id: str) -> list[Session]:
        """Active sessions held by one edge node (to expire them when the edge goes silent)."""

    @abstractmethod
    async def active_edge_ids(self) -> list[str]:
        """Edges holding at least one active session (so a worker that starts after an edge
        died can still expire that edge's sessions)."""

    # --- rate-limit accounting ------------------------------------------------------------

    @abstractmethod
    async def record_rate_limited(self, user_id: str, window_start_ms: int, event_id: str, action: str) -> None:
        """Count one userChatRateLimited event (idempotent by ``event_id``)."""

    @abstractmethod
    async def rate_limited_counts(self, user_id: str, since_ms: int = 0) -> Mapping[int, int]:
        """Events per window start for one user, windows starting at or after ``since_ms``."""

    # --- sync: seq ranges and device progress (issue 15, items 7 and 8) -------------------

    @abstractmethod
    async def conversation_range(
        self, conversation_id: str, from_seq: int, to_seq: int, limit: int = 50
    ) -> Page[ChatMessage]:
        """Messages with ``from_seq <= seq <= to_seq``, ascending, at most ``limit``;
        ``has_more`` when messages of the range follow the page (read on from its last seq + 1)."""

    @abstractmethod
    async def advance_device_progress(self, progress: Sequence[DeviceProgress]) -> None:
        """Raise each device's stored ``acked_seq`` to the one given: never backwards (an ack at
        or below the stored one changes nothing, so a replay is a no-op), one row per
        ``(user_id, device_id)``, nothing deleted. The caller, the single writer of these users,
        may pass several acks of one device: the highest wins."""

    # --- per-user settings ------------------------------------------------------------------

    @abstractmethod
    async def set_read_receipts(self, user_id: str, enabled: bool, *, at_ms: int) -> None:
        """Whether the user's reads are told to the other members; last writer by ``at_ms`` wins."""

    @abstractmethod
    async def read_receipts_enabled(self, user_ids: Iterable[str]) -> dict[str, bool]:
        """Per user, whether they send read receipts (``True`` for a user who never set it)."""

    @abstractmethod
    async def device_progress(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], DeviceProgress]:
        """Stored progress by ``(user_id, device_id)``; a device that never acked is absent."""

    # --- presence: last seen and its setting (issue 16, item 6) -----------------------------

    @abstractmethod
    async def record_last_seen(self, user_id: str, at_ms: int) -> None:
        """The user's last session ended at ``at_ms``: their last seen, only ever raised (an
        older or replayed time changes nothing)."""

    @abstractmethod
    async def set_show_last_seen(self, user_id: str, show: bool, *, at_ms: int) -> None:
        """Whether others may see the user's last seen; last writer by ``at_ms`` wins."""

    @abstractmethod
    async def presence_of(self, user_ids: Iterable[str]) -> dict[str, PresenceState]:
        """Per user: online (an active session), last seen, the setting. Every user asked for is
        in the answer (one never seen is offline with ``last_seen_ms`` None): callers decide who
        may be told (:mod:`chat_events.api.presence_rules`)."""
