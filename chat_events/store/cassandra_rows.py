"""The CQL statements of the Cassandra store (prepared once in ``open()``) and the mapping
between rows and values. Tables and columns are those of ``schemas/cassandra.cql``.

No statement binds ``null``: a null cell is a tombstone. Absent optional values are stored as
sentinels instead (``""`` for text, ``-1`` for a time) and mapped back to ``None`` on read.
"""

from __future__ import annotations

from typing import Any

from chat_events.events.types import ChatMessage
from chat_events.store.cassandra_plan import bucket
from chat_events.store.models import ConversationState, Group, InboxEntry, Session

Row = dict[str, Any]

SESSION_TTL_S = 7 * 24 * 3600
"""Session rows expire a week after their last write (sessions of a lost edge age out)."""

EDGE_DIRECTORY_TTL_S = SESSION_TTL_S + 24 * 3600
"""An edge's directory row outlives the session rows it was last written with."""

EDGE_DIRECTORY_SHARD = 0
"""``session_edges`` is one small partition (one row per edge node)."""

NO_TIME = -1
"""Stored for "no time" (a session that has not ended)."""


def _insert(table: str, columns: str, suffix: str = "") -> str:
    marks = ", ".join("?" for _ in columns.split(","))
    return f"INSERT INTO {table} ({columns}) VALUES ({marks}){suffix}"


MESSAGE_COLS = (
    "conversation_id, bucket, seq, message_id, sender_id, target_type, target_id, message_type, payload, "
    "client_msg_id, mentions, sent_at_ms, stored_at_ms, status, kind, relates_to, reply_to, edited_at_ms, changed_seq"
)
MESSAGE_ROW_COLS = f"{MESSAGE_COLS}, origin_envelope_id"
"""A ``messages`` row as written: the message and its origin (``""``: none recorded)."""
INBOX_COLS = (
    "user_id, bucket, user_seq, message_id, conversation_id, conversation_seq, sender_id, created_at_ms, mentioned, "
    "counted"
)
INBOX_BY_MESSAGE_COLS = (
    "user_id, message_id, user_seq, conversation_id, conversation_seq, sender_id, created_at_ms, mentioned, counted"
)
INBOX_BY_CONVERSATION_COLS = (
    "user_id, conversation_id, conversation_seq, message_id, sender_id, user_seq, mentioned, counted"
)
CONVERSATION_COLS = (
    "user_id, conversation_id, last_message_id, last_seq, last_user_seq, last_activity_ms, read_seq, unread, "
    "pinned, muted, hidden, version, unread_mentions"
)
SESSION_COLS = "user_id, session_id, edge_id, device_id, since_ms, active, ended_at_ms"
EDGE_SESSION_COLS = "edge_id, user_id, session_id, device_id, since_ms, active"
_TTL = " USING TTL ?"

STATEMENTS: dict[str, str] = {
    # messages and their lookups
    "msg_insert": _insert("messages", MESSAGE_ROW_COLS),
    "msg_at_seqs": "SELECT conversation_id, seq, message_id FROM messages "
    "WHERE conversation_id = ? AND bucket = ? AND seq IN ?",
    "msg_in": f"SELECT {MESSAGE_ROW_COLS} FROM messages WHERE conversation_id = ? AND bucket = ? AND seq IN ?",
    "msg_before": f"SELECT {MESSAGE_COLS} FROM messages WHERE conversation_id = ? AND bucket = ? AND seq < ? LIMIT ?",
    "msg_after": f"SELECT {MESSAGE_COLS} FROM messages WHERE conversation_id = ? AND bucket = ? AND seq > ? "
    "AND seq <= ? ORDER BY seq ASC LIMIT ?",
    "msg_set_status": "UPDATE messages SET status = ? WHERE conversation_id = ? AND bucket = ? AND seq = ?",
    "by_id_in": "SELECT message_id, conversation_id, seq FROM messages_by_id WHERE message_id IN ?",
    "by_id_insert": _insert("messages_by_id", "message_id, conversation_id, seq"),
    "by_client_in": "SELECT sender_id, client_msg_id, message_id, conversation_id, seq FROM messages_by_client_id "
    "WHERE sender_id IN ? AND client_msg_id IN ?",
    "by_client_insert": _insert("messages_by_client_id", "sender_id, client_msg_id, message_id, conversation_id, seq"),
    "conv_seq_in": "SELECT conversation_id, max_seq FROM conversation_seqs WHERE conversation_id IN ?",
    "conv_seq_set": _insert("conversation_seqs", "conversation_id, max_seq"),
    # inbox and conversation list
    "inbox_insert": _insert("inbox", INBOX_COLS),
    "inbox_after": f"SELECT {INBOX_COLS} FROM inbox WHERE user_id = ? AND bucket = ? AND user_seq > ? LIMIT ?",
    "inbox_at_seqs": "SELECT user_id, user_seq, message_id FROM inbox "
    "WHERE user_id = ? AND bucket = ? AND user_seq IN ?",
    "inbox_by_msg_in": f"SELECT {INBOX_BY_MESSAGE_COLS} FROM inbox_by_message WHERE user_id IN ? AND message_id IN ?",
    "inbox_by_msg_insert": _insert("inbox_by_message", INBOX_BY_MESSAGE_COLS),
    "inbox_by_conv_insert": _insert("inbox_by_conversation", INBOX_BY_CONVERSATION_COLS),
    "inbox_by_conv_after": "SELECT sender_id, user_seq, mentioned, counted FROM inbox_by_conversation "
    "WHERE user_id = ? AND conversation_id = ? AND conversation_seq > ?",
    "user_seq_in": "SELECT user_id, max_seq FROM user_seqs WHERE user_id IN ?",
    "user_seq_set": _insert("user_seqs", "user_id, max_seq"),
    "conv_in": f"SELECT {CONVERSATION_COLS} FROM conversations_by_user WHERE user_id IN ? AND conversation_id IN ?",
    "conv_list": f"SELECT {CONVERSATION_COLS} FROM conversations_by_user WHERE user_id = ?",
    "conv_insert": _insert("conversations_by_user", CONVERSATION_COLS),
    "conv_activity": "UPDATE conversations_by_user SET last_message_id = ?, last_seq = ?, last_user_seq = ?, "
    "last_activity_ms = ?, read_seq = ?, unread = ?, hidden = ?, version = ?, unread_mentions = ? "
    "WHERE user_id = ? AND conversation_id = ?",
    "conv_read": "UPDATE conversations_by_user SET read_seq = ?, unread = ?, version = ?, unread_mentions = ? "
    "WHERE user_id = ? AND conversation_id = ?",
    "conv_flags": "UPDATE conversations_by_user SET pinned = ?, muted = ?, hidden = ?, version = ? "
    "WHERE user_id = ? AND conversation_id = ?",
    # groups and blocks
    "group_get": "SELECT group_id, name, owner_id, created_at_ms FROM groups WHERE group_id = ?",
    "group_insert": _insert("groups", "group_id, name, owner_id, created_at_ms"),
    "members_in": "SELECT group_id, user_id, active FROM group_members WHERE group_id IN ?",
    "member_get": "SELECT updated_at_ms FROM group_members WHERE group_id = ? AND user_id = ?",
    "member_set": _insert("group_members", "group_id, user_id, active, updated_at_ms"),
    "block_get": "SELECT updated_at_ms FROM blocks WHERE blocker_id = ? AND blocked_id = ?",
    "block_set": _insert("blocks", "blocker_id, blocked_id, active, updated_at_ms"),
    "blocked_by_set": _insert("blocks_by_blocked", "blocked_id, blocker_id, active, updated_at_ms"),
    "blockers_in": "SELECT blocked_id, blocker_id, active FROM blocks_by_blocked WHERE blocked_id IN ?",
    "blocks_by": "SELECT blocked_id, active, updated_at_ms FROM blocks WHERE blocker_id = ?",
    # sessions and rate limits
    "session_get": f"SELECT {SESSION_COLS} FROM sessions_by_user WHERE user_id = ? AND session_id = ?",
    "sessions_of_users": f"SELECT {SESSION_COLS} FROM sessions_by_user WHERE user_id IN ?",
    "session_set": _insert("sessions_by_user", SESSION_COLS, _TTL),
    "edge_session_set": _insert("sessions_by_edge", EDGE_SESSION_COLS, _TTL),
    "sessions_on_edge": f"SELECT {EDGE_SESSION_COLS} FROM sessions_by_edge WHERE edge_id = ?",
    "edge_has_active": "SELECT session_id FROM sessions_by_edge WHERE edge_id = ? AND active = ? LIMIT 1 "
    "ALLOW FILTERING",
    "edge_register": _insert("session_edges", "shard, edge_id, last_since_ms", _TTL),
    "edges_get": "SELECT edge_id FROM session_edges WHERE shard = ?",
    "rate_insert": _insert("rate_limited", "user_id, window_start_ms, event_id, action"),
    "rate_since": "SELECT window_start_ms, event_id FROM rate_limited WHERE user_id = ? AND window_start_ms >= ?",
}
"""Every statement is an idempotent upsert or a read, so all are marked ``is_idempotent``."""


def message_values(m: ChatMessage, origin: str | None = None) -> tuple[Any, ...]:
    """The values of ``msg_insert`` (:data:`MESSAGE_ROW_COLS`)."""
    return (
        m.conversation_id,
        bucket(m.seq),
        m.seq,
        m.message_id,
        m.sender_id,
        m.target_type,
        m.target_id,
        m.message_type,
        m.payload,
        m.client_msg_id or "",
        list(m.mentions),
        m.sent_at_ms,
        m.stored_at_ms,
        m.status,
        m.kind,
        m.relates_to or "",
        m.reply_to or "",
        m.edited_at_ms,
        m.changed_seq,
        origin or "",
    )


def origin_from_row(r: Row) -> str | None:
    """The origin of a ``msg_in`` row (``None``: none recorded; an old row has no cell)."""
    return r.get("origin_envelope_id") or None


def message_from_row(r: Row) -> ChatMessage:
    return ChatMessage(
        message_id=r["message_id"],
        conversation_id=r["conversation_id"],
        seq=r["seq"],
        sender_id=r["sender_id"],
        target_type=r["target_type"],
        target_id=r["target_id"],
        message_type=r["message_type"],
        payload=r["payload"] or "",
        client_msg_id=r["client_msg_id"] or None,
        mentions=tuple(r["mentions"] or ()),
        sent_at_ms=r["sent_at_ms"] or 0,
        stored_at_ms=r["stored_at_ms"] or 0,
        status=r["status"] or "normal",
        kind=r.get("kind") or "message",
        relates_to=r.get("relates_to") or None,
        reply_to=r.get("reply_to") or None,
        edited_at_ms=r.get("edited_at_ms") or 0,
        changed_seq=r.get("changed_seq") or 0,
    )


def inbox_writes(e: InboxEntry) -> list[tuple[str, tuple[Any, ...]]]:
    """The three rows of one inbox entry (timeline, by message, by conversation)."""
    return [
        (
            "inbox_insert",
            (
                e.user_id,
                bucket(e.user_seq),
                e.user_seq,
                e.message_id,
                e.conversation_id,
                e.conversation_seq,
                e.sender_id,
                e.created_at_ms,
                e.mentioned,
                e.counted,
            ),
        ),
        (
            "inbox_by_msg_insert",
            (
                e.user_id,
                e.message_id,
                e.user_seq,
                e.conversation_id,
                e.conversation_seq,
                e.sender_id,
                e.created_at_ms,
                e.mentioned,
                e.counted,
            ),
        ),
        (
            "inbox_by_conv_insert",
            (
                e.user_id,
                e.conversation_id,
                e.conversation_seq,
                e.message_id,
                e.sender_id,
                e.user_seq,
                e.mentioned,
                e.counted,
            ),
        ),
    ]


def inbox_from_row(r: Row) -> InboxEntry:
    return InboxEntry(
        user_id=r["user_id"],
        user_seq=r["user_seq"],
        message_id=r["message_id"],
        conversation_id=r["conversation_id"],
        conversation_seq=r["conversation_seq"],
        sender_id=r["sender_id"],
        created_at_ms=r["created_at_ms"],
        mentioned=bool(r.get("mentioned")),
        counted=r.get("counted") is not False,  # absent or null (written before the column): counted
    )


def conversation_insert(c: ConversationState) -> tuple[str, tuple[Any, ...]]:
    return (
        "conv_insert",
        (
            c.user_id,
            c.conversation_id,
            c.last_message_id,
            c.last_seq,
            c.last_user_seq,
            c.last_activity_ms,
            c.read_seq,
            c.unread,
            c.pinned,
            c.muted,
            c.hidden,
            c.version,
            c.unread_mentions,
        ),
    )


def conversation_activity(c: ConversationState) -> tuple[str, tuple[Any, ...]]:
    """An existing row's inbox-driven columns (pinned/muted are not touched; hidden is: a new
    message shows a removed conversation again)."""
    return (
        "conv_activity",
        (
            c.last_message_id,
            c.last_seq,
            c.last_user_seq,
            c.last_activity_ms,
            c.read_seq,
            c.unread,
            c.hidden,
            c.version,
            c.unread_mentions,
            c.user_id,
            c.conversation_id,
        ),
    )


def conversation_from_row(r: Row) -> ConversationState:
    return ConversationState(
        user_id=r["user_id"],
        conversation_id=r["conversation_id"],
        last_message_id=r["last_message_id"] or "",
        last_seq=r["last_seq"] or 0,
        last_user_seq=r["last_user_seq"] or 0,
        last_activity_ms=r["last_activity_ms"] or 0,
        read_seq=r["read_seq"] or 0,
        unread=r["unread"] or 0,
        pinned=bool(r["pinned"]),
        muted=bool(r["muted"]),
        hidden=bool(r.get("hidden")),
        version=r.get("version") or 0,
        unread_mentions=r.get("unread_mentions") or 0,
    )


def group_from_row(r: Row) -> Group:
    return Group(group_id=r["group_id"], name=r["name"], owner_id=r["owner_id"], created_at_ms=r["created_at_ms"])


def session_writes(s: Session, *, active: bool, ended_at_ms: int | None) -> list[tuple[str, tuple[Any, ...]]]:
    """The user row and the edge row of one session, both with the session TTL."""
    device = s.device_id or ""
    ended = NO_TIME if ended_at_ms is None else ended_at_ms
    return [
        ("session_set", (s.user_id, s.session_id, s.edge_id, device, s.since_ms, active, ended, SESSION_TTL_S)),
        ("edge_session_set", (s.edge_id, s.user_id, s.session_id, device, s.since_ms, active, SESSION_TTL_S)),
    ]


def session_from_row(r: Row) -> Session:
    return Session(
        user_id=r["user_id"],
        session_id=r["session_id"],
        edge_id=r["edge_id"],
        device_id=r["device_id"] or None,
        since_ms=r["since_ms"] or 0,
    )


def ended_at(r: Row) -> int | None:
    value = r.get("ended_at_ms")
    return None if value is None or value == NO_TIME else int(value)
