"""Tables of the embedded store: the same logical tables as ``schemas/cassandra.cql``, in SQLite.

Versioned with ``PRAGMA user_version``; a newer file than the code understands is refused, an
older one is brought up to date on open (:func:`upgrade`).
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 4
"""v2: ``messages.origin_envelope_id`` (the envelope id of the input that stored the message);
v3: ``conversations.hidden``, ``.version`` and ``.unread_mentions``, ``inbox.mentioned``, the ``device_progress`` and
``user_settings`` tables; v4: the ``user_presence`` table, ``messages.kind``, ``.relates_to``, ``.reply_to``,
``.edited_at_ms`` and ``.changed_seq``, ``inbox.counted``, the ``reactions`` and ``hidden_messages`` tables."""

ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("messages", "origin_envelope_id", "TEXT"),
    ("conversations", "hidden", "INTEGER NOT NULL DEFAULT 0"),
    ("conversations", "version", "INTEGER NOT NULL DEFAULT 0"),
    ("conversations", "unread_mentions", "INTEGER NOT NULL DEFAULT 0"),
    ("inbox", "mentioned", "INTEGER NOT NULL DEFAULT 0"),
    ("messages", "kind", "TEXT NOT NULL DEFAULT 'message'"),
    ("messages", "relates_to", "TEXT"),
    ("messages", "reply_to", "TEXT"),
    ("messages", "edited_at_ms", "INTEGER NOT NULL DEFAULT 0"),
    ("messages", "changed_seq", "INTEGER NOT NULL DEFAULT 0"),
    ("inbox", "counted", "INTEGER NOT NULL DEFAULT 1"),
)
"""(table, column, type) of every column added to a table after its first version. ``SCHEMA``
has them for new files; :func:`upgrade` adds them to an older file's tables."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    message_id      TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    sender_id       TEXT NOT NULL,
    target_type     TEXT NOT NULL,
    target_id       TEXT NOT NULL,
    message_type    TEXT NOT NULL,
    payload         TEXT NOT NULL,
    client_msg_id   TEXT,
    mentions        TEXT NOT NULL,          -- JSON array
    sent_at_ms      INTEGER NOT NULL,
    stored_at_ms    INTEGER NOT NULL,
    status          TEXT NOT NULL,
    origin_envelope_id TEXT,                -- NULL: stored before v2 (no origin recorded)
    kind TEXT NOT NULL DEFAULT 'message',
    relates_to TEXT,
    reply_to TEXT,
    edited_at_ms INTEGER NOT NULL DEFAULT 0,
    changed_seq INTEGER NOT NULL DEFAULT 0,
    UNIQUE (conversation_id, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_client_id
    ON messages (sender_id, client_msg_id) WHERE client_msg_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS inbox (
    user_id          TEXT NOT NULL,
    user_seq         INTEGER NOT NULL,
    message_id       TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    conversation_seq INTEGER NOT NULL,
    sender_id        TEXT NOT NULL,
    created_at_ms    INTEGER NOT NULL,
    mentioned INTEGER NOT NULL DEFAULT 0,
    counted INTEGER NOT NULL DEFAULT 1,     -- 0: a change entry or system message (never unread)
    PRIMARY KEY (user_id, user_seq),
    UNIQUE (user_id, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS inbox_by_conversation ON inbox (user_id, conversation_id, conversation_seq);

CREATE TABLE IF NOT EXISTS conversations (
    user_id          TEXT NOT NULL,
    conversation_id  TEXT NOT NULL,
    last_message_id  TEXT NOT NULL,
    last_seq         INTEGER NOT NULL,
    last_user_seq    INTEGER NOT NULL,
    last_activity_ms INTEGER NOT NULL,
    read_seq         INTEGER NOT NULL,
    unread           INTEGER NOT NULL,
    pinned           INTEGER NOT NULL,
    muted            INTEGER NOT NULL,
    hidden INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0,
    unread_mentions INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, conversation_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS conversations_by_activity ON conversations (user_id, last_activity_ms);

CREATE TABLE IF NOT EXISTS groups (
    group_id      TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    owner_id      TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS group_members (
    group_id      TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    active        INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS group_members_by_user ON group_members (user_id, active);

CREATE TABLE IF NOT EXISTS group_profiles (    -- one row per group; last writer by updated_at_ms wins
    group_id      TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    owner_id      TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    avatar_url    TEXT NOT NULL,
    description   TEXT NOT NULL,
    dissolved     INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS group_roles (       -- admin/member and mute per (group, member)
    group_id       TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    role           TEXT NOT NULL,
    muted          INTEGER NOT NULL,
    muted_until_ms INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS blocks (
    blocker_id    TEXT NOT NULL,
    blocked_id    TEXT NOT NULL,
    active        INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blocks_by_blocked ON blocks (blocked_id, active);

CREATE TABLE IF NOT EXISTS sessions (
    user_id    TEXT NOT NULL,
    session_id TEXT NOT NULL,
    edge_id    TEXT NOT NULL,
    device_id  TEXT,
    since_ms   INTEGER NOT NULL,
    active     INTEGER NOT NULL,
    ended_at_ms INTEGER,
    PRIMARY KEY (user_id, session_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_by_edge ON sessions (edge_id, active);

CREATE TABLE IF NOT EXISTS rate_limited (
    user_id         TEXT NOT NULL,
    window_start_ms INTEGER NOT NULL,
    event_id        TEXT NOT NULL,
    action          TEXT NOT NULL,
    PRIMARY KEY (user_id, window_start_ms, event_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS device_tokens (
    user_id       TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    platform      TEXT NOT NULL,
    token         TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS user_settings (     -- one row per user; last writer by updated_at_ms wins
    user_id       TEXT PRIMARY KEY,
    read_receipts INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS user_presence (     -- one row per user: last seen (only raised), the last-seen setting
    user_id        TEXT PRIMARY KEY,
    last_seen_ms   INTEGER NOT NULL DEFAULT 0,  -- when the user's last session ended
    show_last_seen INTEGER NOT NULL DEFAULT 1,
    settings_at_ms INTEGER NOT NULL DEFAULT 0   -- last writer of show_last_seen wins
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS reactions (         -- one row per (message, user, emoji); latest at_ms wins
    message_id TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    emoji      TEXT NOT NULL,
    active     INTEGER NOT NULL,
    at_ms      INTEGER NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS hidden_messages (   -- delete for me: one row per (user, message), never deleted
    user_id    TEXT NOT NULL,
    message_id TEXT NOT NULL,
    at_ms      INTEGER NOT NULL,
    PRIMARY KEY (user_id, message_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS device_progress (   -- how far each device has acked (SyncAck)
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    acked_seq   INTEGER NOT NULL,              -- only ever raised
    acked_at_ms INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id)
) WITHOUT ROWID;
"""


def upgrade(db: sqlite3.Connection) -> None:
    """Bring a file older than :data:`SCHEMA_VERSION` (or a new one) up to it, keeping its data:
    create what is missing (every statement is ``IF NOT EXISTS``), then, in one write
    transaction (so two processes opening the same old file do not both alter it), add the
    missing :data:`ADDED_COLUMNS` and set ``user_version``."""
    db.executescript(SCHEMA)
    db.execute("BEGIN IMMEDIATE")
    try:
        for table, column, kind in ADDED_COLUMNS:
            have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
