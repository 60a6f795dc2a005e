"""The embedded store: one SQLite file (WAL) under ``CHAT_DATA_DIR``; no server to install.

Durability: every write method is one transaction. With ``synchronous=NORMAL`` (the default)
a committed transaction survives a killed process (``kill -9``); ``CHAT_STORE_SYNC=full`` also
survives power loss at the cost of an fsync per commit. Several processes (worker, edge, tests)
may open the same file: WAL gives readers a consistent snapshot while one writer commits.

All SQLite work runs on one dedicated thread, so the event loop never blocks on the disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from chat_events.errors import ConfigurationError, SeqConflictError, StoreUnavailableError
from chat_events.events.types import ChatMessage
from chat_events.store import sqlite_rows as rows
from chat_events.store.embedded_changes import EmbeddedChangeRows
from chat_events.store.embedded_groups import EmbeddedGroupRows
from chat_events.store.embedded_presence import EmbeddedPresenceRows
from chat_events.store.embedded_settings import EmbeddedSettingsRows
from chat_events.store.embedded_sync import EmbeddedSyncRows
from chat_events.store.models import ConversationState, Group, InboxEntry, Page, Session, WriterReads
from chat_events.store.port import MessageStore
from chat_events.store.sqlite_schema import SCHEMA_VERSION, upgrade

R = TypeVar("R")
_CHUNK = 500  # SQLite's host-parameter limit is 32766; keep IN (...) lists modest


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _marks(n: int) -> str:
    return ",".join("?" * n)


class EmbeddedStore(
    EmbeddedChangeRows, EmbeddedSyncRows, EmbeddedSettingsRows, EmbeddedGroupRows, EmbeddedPresenceRows, MessageStore
):
    """:class:`MessageStore` on SQLite. ``path`` is created (with parents) on open."""

    def __init__(self, path: Path, *, sync: str = "normal") -> None:
        self._path = path
        self._sync = sync
        self._db: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None

    # --- plumbing -------------------------------------------------------------------------

    async def open(self) -> None:
        if self._db is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chat-store")
        self._db = await self._run(self._connect)

    def _connect(self) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=30.0)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if self._sync == 'full' else 'NORMAL'}")
        db.execute("PRAGMA busy_timeout=30000")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            db.close()
            raise ConfigurationError(f"{self._path} has store schema v{version}; this code knows v{SCHEMA_VERSION}")
        if version < SCHEMA_VERSION:
            upgrade(db)
        return db

    async def close(self) -> None:
        db, self._db = self._db, None
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if db is not None:
            await asyncio.get_running_loop().run_in_executor(executor, db.close)
        executor.shutdown(wait=True)

    async def _run(self, fn: Callable[[], R]) -> R:
        if self._executor is None:
            raise StoreUnavailableError("the store is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        except sqlite3.OperationalError as exc:  # locked, disk I/O: worth retrying
            raise StoreUnavailableError(f"embedded store: {exc}") from exc

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreUnavailableError("the store is not open")
        return self._db

    def _write(self, fn: Callable[[sqlite3.Connection], R]) -> Callable[[], R]:
        """Wrap ``fn`` in one IMMEDIATE transaction (rolled back if it raises)."""

        def run() -> R:
            db = self._conn
            db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

        return run

    def _select(self, sql: str, keys: Sequence[Any], suffix: str = "") -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for part in _chunks(keys):
            out.extend(self._conn.execute(sql.format(_marks(len(part))) + suffix, part).fetchall())
        return out

    def _select_pairs(
        self, cols: str, table: str, a: str, b: str, keys: Sequence[tuple[str, str]]
    ) -> list[tuple[Any, ...]]:
        """Rows of ``table`` whose ``(a, b)`` is among ``keys``: one indexed query per chunk of
        pairs (a join on a VALUES list; ``(a, b) IN (VALUES ...)`` would scan the table)."""
        out: list[tuple[Any, ...]] = []
        for part in _chunks(keys):
            values = ",".join("(?, ?)" for _ in part)
            sql = (
                f"WITH k(ka, kb) AS (VALUES {values}) SELECT {cols} FROM k CROSS JOIN {table} ON {a} = ka AND {b} = kb"
            )
            out.extend(self._conn.execute(sql, [v for key in part for v in key]).fetchall())
        return out

    # --- messages -------------------------------------------------------------------------

    async def find_messages(self, message_ids: Iterable[str]) -> dict[str, ChatMessage]:
        ids = list(dict.fromkeys(message_ids))
        if not ids:
            return {}
        found = await self._run(
            lambda: self._select(f"SELECT {rows.MESSAGE_COLS} FROM messages WHERE message_id IN ({{}})", ids)
        )
        return {m.message_id: m for m in map(rows.message_from_row, found)}

    async def find_client_messages(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], ChatMessage]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}

        found = map(
            rows.message_from_row,
            await self._run(
                lambda: self._select_pairs(rows.MESSAGE_COLS, "messages", "sender_id", "client_msg_id", wanted)
            ),
        )
        return {(m.sender_id, m.client_msg_id or ""): m for m in found}

    async def max_conversation_seqs(self, conversation_ids: Iterable[str]) -> dict[str, int]:
        ids = list(dict.fromkeys(conversation_ids))
        sql = "SELECT conversation_id, MAX(seq) FROM messages WHERE conversation_id IN ({})"
        found = await self._run(lambda: self._select(sql, ids, " GROUP BY conversation_id")) if ids else []
        result = dict.fromkeys(ids, 0)
        result.update({cid: seq for cid, seq in found})
        return result

    async def save_messages(
        self,
        messages: Sequence[ChatMessage],
        origins: Mapping[str, str] | None = None,
        *,
        checked: WriterReads | None = None,
    ) -> None:
        """See the port. A stored message is never written again, so its origin stays the one
        of the save that inserted its row. ``checked`` is not needed: the checks here are
        reads of the local file inside the write transaction, as cheap as the writes."""
        if not messages:
            return
        origin_of = origins or {}

        def write(db: sqlite3.Connection) -> None:
            for message in messages:
                existing = db.execute(
                    "SELECT conversation_id, seq FROM messages WHERE message_id = ?", (message.message_id,)
                ).fetchone()
                if existing is not None:
                    if tuple(existing) != (message.conversation_id, message.seq):
                        raise SeqConflictError(f"message {message.message_id} is stored at {tuple(existing)}")
                    continue
                try:
                    db.execute(rows.INSERT_MESSAGE, rows.message_to_row(message, origin_of.get(message.message_id)))
                except sqlite3.IntegrityError as exc:
                    raise SeqConflictError(
                        f"({message.conversation_id}, {message.seq}) or its client_msg_id is taken: {exc}"
                    ) from exc

        await self._run(self._write(write))

    async def message_origins(self, message_ids: Iterable[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(message_ids))
        if not ids:
            return {}
        sql = "SELECT message_id, origin_envelope_id FROM messages WHERE message_id IN ({})"
        found = await self._run(lambda: self._select(sql, ids, " AND origin_envelope_id IS NOT NULL"))
        return {message_id: origin for message_id, origin in found}

    async def get_message(self, message_id: str) -> ChatMessage | None:
        return (await self.find_messages([message_id])).get(message_id)

    async def conversation_messages(
        self, conversation_id: str, *, after_seq: int | None = None, before_seq: int | None = None, limit: int = 50
    ) -> Page[ChatMessage]:
        if (after_seq is None) == (before_seq is None):
            raise ValueError("give exactly one of after_seq / before_seq")
        if after_seq is not None:
            sql, bound = "seq > ? ORDER BY seq ASC", after_seq
        else:
            sql, bound = "seq < ? ORDER BY seq DESC", before_seq or 0
        query = f"SELECT {rows.MESSAGE_COLS} FROM messages WHERE conversation_id = ? AND {sql} LIMIT ?"
        found = await self._run(lambda: self._conn.execute(query, (conversation_id, bound, limit + 1)).fetchall())
        items = tuple(map(rows.message_from_row, found[:limit]))
        return Page(items, has_more=len(found) > limit)

    async def set_message_status(self, message_id: str, status: str) -> ChatMessage | None:
        def write(db: sqlite3.Connection) -> None:
            db.execute("UPDATE messages SET status = ? WHERE message_id = ?", (status, message_id))

        await self._run(self._write(write))
        return await self.get_message(message_id)

    # --- inbox ----------------------------------------------------------------------------

    async def find_inbox_entries(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], InboxEntry]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}

        found = await self._run(lambda: self._select_pairs(rows.INBOX_COLS, "inbox", "user_id", "message_id", wanted))
        return {(e.user_id, e.message_id): e for e in map(rows.inbox_from_row, found)}

    async def max_user_seqs(self, user_ids: Iterable[str]) -> dict[str, int]:
        ids = list(dict.fromkeys(user_ids))
        sql = "SELECT user_id, MAX(user_seq) FROM inbox WHERE user_id IN ({})"
        found = await self._run(lambda: self._select(sql, ids, " GROUP BY user_id")) if ids else []
        result = dict.fromkeys(ids, 0)
        result.update({uid: seq for uid, seq in found})
        return result

    async def get_conversations(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], ConversationState]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}

        found = await self._run(
            lambda: self._select_pairs(rows.CONVERSATION_COLS, "conversations", "user_id", "conversation_id", wanted)
        )
        return {(c.user_id, c.conversation_id): c for c in map(rows.conversation_from_row, found)}

    async def save_inbox(
        self,
        entries: Sequence[InboxEntry],
        conversations: Sequence[ConversationState],
        *,
        checked: WriterReads | None = None,
    ) -> None:
        """See the port (``checked`` is not needed, as for :meth:`save_messages`)."""
        if not entries and not conversations:
            return

        def write(db: sqlite3.Connection) -> None:
            for entry in entries:
                try:
                    db.execute(rows.INSERT_INBOX, rows.inbox_to_row(entry))
                except sqlite3.IntegrityError:
                    stored = db.execute(
                        "SELECT user_seq FROM inbox WHERE user_id = ? AND message_id = ?",
                        (entry.user_id, entry.message_id),
                    ).fetchone()
                    if stored is None or stored[0] != entry.user_seq:
                        raise SeqConflictError(f"user seq {entry.user_seq} of {entry.user_id} is taken") from None
            db.executemany(rows.UPSERT_CONVERSATION, [rows.conversation_to_row(c) for c in conversations])

        await self._run(self._write(write))

    async def inbox_after(self, user_id: str, after_seq: int, limit: int = 100) -> Page[InboxEntry]:
        sql = f"SELECT {rows.INBOX_COLS} FROM inbox WHERE user_id = ? AND user_seq > ? ORDER BY user_seq LIMIT ?"
        found = await self._run(lambda: self._conn.execute(sql, (user_id, after_seq, limit + 1)).fetchall())
        return Page(tuple(map(rows.inbox_from_row, found[:limit])), has_more=len(found) > limit)

    async def list_conversations(self, user_id: str, limit: int = 50) -> list[ConversationState]:
        sql = (
            f"SELECT {rows.CONVERSATION_COLS} FROM conversations WHERE user_id = ? "
            "ORDER BY last_activity_ms DESC, conversation_id LIMIT ?"
        )
        found = await self._run(lambda: self._conn.execute(sql, (user_id, limit)).fetchall())
        return [rows.conversation_from_row(r) for r in found]

    async def mark_read(
        self, user_id: str, conversation_id: str, seq: int, *, version: int | None = None
    ) -> ConversationState | None:
        def write(db: sqlite3.Connection) -> None:
            db.execute(
                """UPDATE conversations SET read_seq = MAX(read_seq, ?), version = MAX(version, COALESCE(?, 0))
                   WHERE user_id = ? AND conversation_id = ?""",
                (seq, version, user_id, conversation_id),
            )
            db.execute(
                """UPDATE conversations SET (unread, unread_mentions) = (
                       SELECT COUNT(*), COALESCE(SUM(i.mentioned), 0) FROM inbox i
                       WHERE i.user_id = conversations.user_id AND i.conversation_id = conversations.conversation_id
                       AND i.conversation_seq > conversations.read_seq AND i.sender_id != conversations.user_id
                       AND i.counted = 1)
                   WHERE user_id = ? AND conversation_id = ?""",
                (user_id, conversation_id),
            )

        await self._run(self._write(write))
        return (await self.get_conversations([(user_id, conversation_id)])).get((user_id, conversation_id))

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
        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE conversations SET pinned = COALESCE(?, pinned), muted = COALESCE(?, muted), "
                "hidden = COALESCE(?, hidden), version = MAX(version, COALESCE(?, 0)) "
                "WHERE user_id = ? AND conversation_id = ?",
                (pinned, muted, hidden, version, user_id, conversation_id),
            )

        await self._run(self._write(write))
        return (await self.get_conversations([(user_id, conversation_id)])).get((user_id, conversation_id))

    # --- groups ---------------------------------------------------------------------------

    async def save_group(self, group: Group, member_ids: Iterable[str]) -> None:
        members = list(dict.fromkeys(member_ids))

        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO groups VALUES (?, ?, ?, ?) ON CONFLICT(group_id) DO NOTHING",
                (group.group_id, group.name, group.owner_id, group.created_at_ms),
            )
            db.executemany(
                "INSERT INTO group_members VALUES (?, ?, 1, ?) ON CONFLICT(group_id, user_id) DO NOTHING",
                [(group.group_id, member, group.created_at_ms) for member in members],
            )

        await self._run(self._write(write))

    async def get_group(self, group_id: str) -> Group | None:
        sql = "SELECT group_id, name, owner_id, created_at_ms FROM groups WHERE group_id = ?"
        row = await self._run(lambda: self._conn.execute(sql, (group_id,)).fetchone())
        return None if row is None else Group(group_id=row[0], name=row[1], owner_id=row[2], created_at_ms=row[3])

    async def set_group_member(self, group_id: str, user_id: str, *, active: bool, at_ms: int) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.execute(
                rows.UPSERT_STATUS.format(table="group_members", a="group_id", b="user_id"),
                (group_id, user_id, active, at_ms),
            )

        await self._run(self._write(write))

    async def group_members(self, group_ids: Iterable[str]) -> dict[str, frozenset[str]]:
        ids = list(dict.fromkeys(group_ids))
        sql = "SELECT group_id, user_id FROM group_members WHERE active = 1 AND group_id IN ({})"
        found = await self._run(lambda: self._select(sql, ids)) if ids else []
        members: dict[str, set[str]] = {gid: set() for gid in ids}
        for gid, uid in found:
            members[gid].add(uid)
        return {gid: frozenset(users) for gid, users in members.items()}

    # --- blocks ---------------------------------------------------------------------------

    async def set_block(self, blocker_id: str, blocked_id: str, *, active: bool, at_ms: int) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.execute(
                rows.UPSERT_STATUS.format(table="blocks", a="blocker_id", b="blocked_id"),
                (blocker_id, blocked_id, active, at_ms),
            )

        await self._run(self._write(write))

    async def blockers_of(self, user_ids: Iterable[str]) -> dict[str, frozenset[str]]:
        ids = list(dict.fromkeys(user_ids))
        sql = "SELECT blocked_id, blocker_id FROM blocks WHERE active = 1 AND blocked_id IN ({})"
        found = await self._run(lambda: self._select(sql, ids)) if ids else []
        blockers: dict[str, set[str]] = {uid: set() for uid in ids}
        for blocked, blocker in found:
            blockers[blocked].add(blocker)
        return {uid: frozenset(users) for uid, users in blockers.items()}

    async def blocks_by(self, blocker_id: str) -> dict[str, int]:
        sql = "SELECT blocked_id, updated_at_ms FROM blocks WHERE active = 1 AND blocker_id IN ({})"
        return {blocked: int(at_ms) for blocked, at_ms in await self._run(lambda: self._select(sql, [blocker_id]))}

    # --- sessions -------------------------------------------------------------------------

    async def save_session(self, session: Session) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.execute(rows.UPSERT_SESSION, rows.session_to_row(session))

        await self._run(self._write(write))

    async def end_session(self, user_id: str, session_id: str, *, at_ms: int) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE sessions SET active = 0, ended_at_ms = ? "
                "WHERE user_id = ? AND session_id = ? AND since_ms <= ?",
                (at_ms, user_id, session_id, at_ms),
            )

        await self._run(self._write(write))

    async def sessions_of(self, user_ids: Iterable[str]) -> dict[str, tuple[Session, ...]]:
        ids = list(dict.fromkeys(user_ids))
        sql = f"SELECT {rows.SESSION_COLS} FROM sessions WHERE active = 1 AND user_id IN ({{}})"
        found = await self._run(lambda: self._select(sql, ids, " ORDER BY since_ms, session_id")) if ids else []
        sessions: dict[str, list[Session]] = {uid: [] for uid in ids}
        for session in map(rows.session_from_row, found):
            sessions[session.user_id].append(session)
        return {uid: tuple(items) for uid, items in sessions.items()}

    async def sessions_on_edge(self, edge_id: str) -> list[Session]:
        sql = f"SELECT {rows.SESSION_COLS} FROM sessions WHERE edge_id = ? AND active = 1 ORDER BY user_id, since_ms"
        found = await self._run(lambda: self._conn.execute(sql, (edge_id,)).fetchall())
        return [rows.session_from_row(r) for r in found]

    async def active_edge_ids(self) -> list[str]:
        sql = "SELECT DISTINCT edge_id FROM sessions WHERE active = 1 ORDER BY edge_id"
        return [row[0] for row in await self._run(lambda: self._conn.execute(sql).fetchall())]

    # --- rate limits ----------------------------------------------------------------------

    async def record_rate_limited(self, user_id: str, window_start_ms: int, event_id: str, action: str) -> None:
        def write(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO rate_limited VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (user_id, window_start_ms, event_id, action),
            )

        await self._run(self._write(write))

    async def rate_limited_counts(self, user_id: str, since_ms: int = 0) -> Mapping[int, int]:
        sql = (
            "SELECT window_start_ms, COUNT(*) FROM rate_limited WHERE user_id = ? AND window_start_ms >= ? "
            "GROUP BY window_start_ms ORDER BY window_start_ms"
        )
        found = await self._run(lambda: self._conn.execute(sql, (user_id, since_ms)).fetchall())
        return {start: count for start, count in found}
