"""Inbox decisions: how a new inbox entry changes the recipient's conversation row, and
whether a recipient without an online session gets an offline push. Pure functions."""

from __future__ import annotations

from dataclasses import replace

from chat_events.store.models import ConversationState, InboxEntry

PREVIEW_CHARS = 100


def fold_conversation(state: ConversationState | None, entry: InboxEntry, *, version: int = 0) -> ConversationState:
    """The conversation row after ``entry`` (a *new* inbox entry; replays never reach here).

    A message from someone else raises ``unread`` when it is past ``read_seq``; the user's own
    message marks the conversation read up to it (you have read what you sent). A message that
    mentions the user also raises ``unread_mentions`` (the "@ me" badge). Any new message
    shows a removed (hidden) conversation again. ``version``: the row's new version (see
    :func:`chat_events.streams.conversation_logic.next_version`).

    An entry that does not count (``counted`` false: a change entry or a system message) moves
    ``last_seq`` and ``last_user_seq`` only (so a read up to it covers it): no badge, no new last
    message or activity time, and a removed conversation stays removed.
    """
    if not entry.counted:
        return _fold_uncounted(state, entry, version=version)
    own = entry.sender_id == entry.user_id
    if state is None:
        state = ConversationState(
            user_id=entry.user_id,
            conversation_id=entry.conversation_id,
            last_message_id=entry.message_id,
            last_seq=0,
            last_user_seq=0,
            last_activity_ms=entry.created_at_ms,
        )
    read_seq = max(state.read_seq, entry.conversation_seq) if own else state.read_seq
    caught_up = own and read_seq >= state.last_seq
    unread = 0 if caught_up else state.unread
    mentions = 0 if caught_up else state.unread_mentions
    if not own and entry.conversation_seq > read_seq:
        unread += 1
        mentions += entry.mentioned
    newer = entry.conversation_seq >= state.last_seq
    return replace(
        state,
        last_message_id=entry.message_id if newer else state.last_message_id,
        last_seq=max(state.last_seq, entry.conversation_seq),
        last_user_seq=max(state.last_user_seq, entry.user_seq),
        last_activity_ms=max(state.last_activity_ms, entry.created_at_ms),
        read_seq=read_seq,
        unread=unread,
        hidden=False,
        version=max(state.version, version),
        unread_mentions=mentions,
    )


def _fold_uncounted(state: ConversationState | None, entry: InboxEntry, *, version: int) -> ConversationState:
    if state is None:  # a first entry that does not count (a system message: "alice added you")
        return ConversationState(
            user_id=entry.user_id,
            conversation_id=entry.conversation_id,
            last_message_id=entry.message_id,
            last_seq=entry.conversation_seq,
            last_user_seq=entry.user_seq,
            last_activity_ms=entry.created_at_ms,
            read_seq=0,
            version=version,
        )
    return replace(
        state,
        last_seq=max(state.last_seq, entry.conversation_seq),
        last_user_seq=max(state.last_user_seq, entry.user_seq),
        version=max(state.version, version),
    )


def wants_push(*, recipient_id: str, sender_id: str, online_sessions: int, muted: bool) -> bool:
    """Offline push: only for someone else's message, to a user with no session, not muted."""
    return recipient_id != sender_id and online_sessions == 0 and not muted


def preview_of(message_type: str, payload: str) -> str:
    """What a push notification shows: the start of a text, or the kind of attachment."""
    if message_type == "text":
        return payload if len(payload) <= PREVIEW_CHARS else payload[: PREVIEW_CHARS - 1] + "…"
    return f"[{message_type}]"
