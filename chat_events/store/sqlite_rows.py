"""Row <-> value mapping and statements of the embedded store (column order = SELECT order)."""

from __future__ import annotations

from typing import Any

import orjson

from chat_events.events.types import ChatMessage
from chat_events.store.models import ConversationState, InboxEntry, Session

MESSAGE_COLS = (
    "message_id, conversation_id, seq, sender_id, target_type, target_id, message_type, payload, "
    "client_msg_id, mentions, sent_at_ms, stored_at_ms, status, kind, relates_to, reply_to, edited_at_ms, changed_seq"
)
_MESSAGE_MARKS = ",".join("?" * (MESSAGE_COLS.count(",") + 2))
INSERT_MESSAGE = f"INSERT INTO messages ({MESSAGE_COLS}, origin_envelope_id) VALUES ({_MESSAGE_MARKS})"
"""A new message row with its origin (read only by ``message_origins``, not with the message)."""


def message_to_row(m: ChatMessage, origin: str | None = None) -> tuple[Any, ...]:
    return (
        m.message_id,
        m.conversation_id,
        m.seq,
        m.sender_id,
        m.target_type,
        m.target_id,
        m.message_type,
        m.payload,
        m.client_msg_id,
        orjson.dumps(list(m.mentions)).decode(),
        m.sent_at_ms,
        m.stored_at_ms,
        m.status,
        m.kind,
        m.relates_to,
        m.reply_to,
        m.edited_at_ms,
        m.changed_seq,
        origin,
    )


def message_from_row(r: tuple[Any, ...]) -> ChatMessage:
    return ChatMessage(
        message_id=r[0],
        conversation_id=r[1],
        seq=r[2],
        sender_id=r[3],
        target_type=r[4],
        target_id=r[5],
        message_type=r[6],
        payload=r[7],
        client_msg_id=r[8],
        mentions=tuple(orjson.loads(r[9])),
        sent_at_ms=r[10],
        stored_at_ms=r[11],
        status=r[12],
        kind=r[13],
        relates_to=r[14],
        reply_to=r[15],
        edited_at_ms=r[16],
        changed_seq=r[17],
    )


UPDATE_MESSAGE = (
    "UPDATE messages SET payload = ?, mentions = ?, status = ?, edited_at_ms = ?, changed_seq = ? WHERE message_id = ?"
)
"""The changeable state of a stored message (``update_messages``); a message not stored is no row."""


def message_update_row(m: ChatMessage) -> tuple[Any, ...]:
    return (m.payload, orjson.dumps(list(m.mentions)).decode(), m.status, m.edited_at_ms, m.changed_seq, m.message_id)


INBOX_COLS = (
    "user_id, user_seq, message_id, conversation_id, conversation_seq, sender_id, created_at_ms, mentioned, counted"
)
INSERT_INBOX = f"INSERT INTO inbox ({INBOX_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


def inbox_to_row(e: InboxEntry) -> tuple[Any, ...]:
    return (
        e.user_id,
        e.user_seq,
        e.message_id,
        e.conversation_id,
        e.conversation_seq,
        e.sender_id,
        e.created_at_ms,
        e.mentioned,
        e.counted,
    )


def inbox_from_row(r: tuple[Any, ...]) -> InboxEntry:
    return InboxEntry(
        user_id=r[0],
        user_seq=r[1],
        message_id=r[2],
        conversation_id=r[3],
        conversation_seq=r[4],
        sender_id=r[5],
        created_at_ms=r[6],
        mentioned=bool(r[7]),
        counted=bool(r[8]),
    )


CONVERSATION_COLS = (
    "user_id, conversation_id, last_message_id, last_seq, last_user_seq, last_activity_ms, read_seq, unread, "
    "pinned, muted, hidden, version, unread_mentions"
)
UPSERT_CONVERSATION = f"""INSERT INTO conversations ({CONVERSATION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (user_id, conversation_id) DO UPDATE SET
    last_message_id = excluded.last_message_id, last_seq = excluded.last_seq,
    last_user_seq = excluded.last_user_seq, last_activity_ms = excluded.last_activity_ms,
    read_seq = MAX(read_seq, excluded.read_seq), unread = excluded.unread, hidden = excluded.hidden,
    version = MAX(version, excluded.version), unread_mentions = excluded.unread_mentions"""
"""Pinned/muted are the user's own settings: an inbox write never overwrites them (it does
show a hidden conversation again: a new message brings it back)."""


def conversation_to_row(c: ConversationState) -> tuple[Any, ...]:
    return (
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
    )


def conversation_from_row(r: tuple[Any, ...]) -> ConversationState:
    return ConversationState(
        user_id=r[0],
        conversation_id=r[1],
        last_message_id=r[2],
        last_seq=r[3],
        last_user_seq=r[4],
        last_activity_ms=r[5],
        read_seq=r[6],
        unread=r[7],
        pinned=bool(r[8]),
        muted=bool(r[9]),
        hidden=bool(r[10]),
        version=r[11] or 0,
        unread_mentions=r[12] or 0,
    )


SESSION_COLS = "user_id, session_id, edge_id, device_id, since_ms"
UPSERT_SESSION = f"""INSERT INTO sessions ({SESSION_COLS}, active) VALUES (?, ?, ?, ?, ?, 1)
ON CONFLICT (user_id, session_id) DO UPDATE SET edge_id = excluded.edge_id, device_id = excluded.device_id,
    since_ms = excluded.since_ms, active = 1, ended_at_ms = NULL
WHERE sessions.ended_at_ms IS NULL OR sessions.ended_at_ms < excluded.since_ms"""
"""A replayed connect older than the session's recorded end does not resurrect it."""


def session_to_row(s: Session) -> tuple[Any, ...]:
    return (s.user_id, s.session_id, s.edge_id, s.device_id, s.since_ms)


def session_from_row(r: tuple[Any, ...]) -> Session:
    return Session(user_id=r[0], session_id=r[1], edge_id=r[2], device_id=r[3], since_ms=r[4])


UPSERT_STATUS = """INSERT INTO {table} ({a}, {b}, active, updated_at_ms) VALUES (?, ?, ?, ?)
ON CONFLICT ({a}, {b}) DO UPDATE SET active = excluded.active, updated_at_ms = excluded.updated_at_ms
WHERE excluded.updated_at_ms >= {table}.updated_at_ms"""
"""Membership and block rows: a status update where the latest ``at_ms`` wins (replays are no-ops)."""
