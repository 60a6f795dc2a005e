"""``schemas/cassandra.cql``: loading it, splitting it into statements, reading its tables, and
creating the keyspace and tables (``chat-events store init``). Idempotent: every statement is
``IF NOT EXISTS``, and a column added to a table after its first version (:data:`ADDED_COLUMNS`)
is added with ``ALTER TABLE ... ADD``, an "already exists" answer counting as done; so init may
run any number of times, also against a live cluster, and brings an older keyspace up to date.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chat_events.errors import ConfigurationError
from chat_events.settings import Settings

CQL_PATH = Path(__file__).resolve().parents[1] / "schemas" / "cassandra.cql"
"""``chat_events/schemas`` is the repository's ``schemas/`` (a symlink; a copy in the wheel)."""


def strip_comments(text: str) -> str:
    """``text`` without ``--`` / ``//`` line comments and ``/* */`` block comments (quoted
    strings and quoted identifiers are left alone)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            end = i + 1
            while end < n:
                if text[end] == ch:
                    if end + 1 < n and text[end + 1] == ch:  # doubled quote = escaped
                        end += 2
                        continue
                    break
                end += 1
            out.append(text[i : end + 1])
            i = end + 1
        elif text.startswith(("--", "//"), i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def split_statements(text: str) -> list[str]:
    """The statements of a CQL script: comments stripped, split on ``;`` outside quotes,
    whitespace collapsed, empty ones dropped."""
    statements: list[str] = []
    current: list[str] = []
    quote: str | None = None
    for ch in strip_comments(text):
        if quote is not None:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == ";":
            statements.append("".join(current))
            current = []
            continue
        current.append(ch)
    statements.append("".join(current))
    return [" ".join(s.split()) for s in statements if s.strip()]


def load_statements(path: Path = CQL_PATH) -> list[str]:
    return split_statements(path.read_text(encoding="utf-8"))


ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("messages", "origin_envelope_id", "text"),
    ("conversations_by_user", "hidden", "boolean"),
    ("conversations_by_user", "version", "bigint"),
    ("conversations_by_user", "unread_mentions", "bigint"),
    ("inbox", "mentioned", "boolean"),
    ("inbox_by_message", "mentioned", "boolean"),
    ("inbox_by_conversation", "mentioned", "boolean"),
    ("messages", "kind", "text"),
    ("messages", "relates_to", "text"),
    ("messages", "reply_to", "text"),
    ("messages", "edited_at_ms", "bigint"),
    ("messages", "changed_seq", "bigint"),
    ("inbox", "counted", "boolean"),
    ("inbox_by_message", "counted", "boolean"),
    ("inbox_by_conversation", "counted", "boolean"),
)
"""(table, column, type) of every column added to a table of the schema file after the table's
first version. The file's ``CREATE TABLE`` has them (new keyspaces); :func:`init_schema_sync`
adds them to tables created before (a unit test holds the two equal)."""


def add_column_statements() -> list[str]:
    """One ``ALTER TABLE ... ADD`` per :data:`ADDED_COLUMNS` (no ``IF NOT EXISTS``: Cassandra
    takes it there only since 4.1)."""
    return [f"ALTER TABLE {table} ADD {column} {kind}" for table, column, kind in ADDED_COLUMNS]


def column_exists_error(exc: BaseException) -> bool:
    """Whether a failed ``ALTER TABLE ... ADD`` says that the column is there already
    (Cassandra 4 and 5: "Column with name '...' already exists"; 3.x: "... conflicts with an
    existing column")."""
    text = str(exc).lower()
    return "already exists" in text or "conflicts with an existing column" in text


@dataclass(frozen=True, slots=True)
class Table:
    """One ``CREATE TABLE`` of the schema."""

    name: str
    columns: dict[str, str]
    partition_key: tuple[str, ...]
    clustering: tuple[str, ...]
    order: dict[str, str]
    """Clustering column -> ``ASC`` / ``DESC`` (ascending unless the table says otherwise)."""

    @property
    def primary_key(self) -> tuple[str, ...]:
        return self.partition_key + self.clustering


_CREATE_TABLE = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\)(?: WITH (.*))?$", re.IGNORECASE)
_CLUSTERING_ORDER = re.compile(r"CLUSTERING ORDER BY \(([^)]*)\)", re.IGNORECASE)
_PRIMARY_KEY = re.compile(r"PRIMARY KEY \((.*)\)$", re.IGNORECASE)


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside parentheses or angle brackets."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        depth += ch in "(<"
        depth -= ch in ")>"
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def parse_table(statement: str) -> Table | None:
    """The table a ``CREATE TABLE IF NOT EXISTS`` statement declares (``None`` for others)."""
    match = _CREATE_TABLE.match(statement.strip())
    if match is None:
        return None
    columns: dict[str, str] = {}
    key: list[str] = []
    for part in _split_top(match.group(2)):
        pk = _PRIMARY_KEY.match(part)
        if pk is not None:
            key = _split_top(pk.group(1))
            continue
        name, _, rest = part.partition(" ")
        if rest.upper().endswith(" PRIMARY KEY"):
            rest = rest[: -len(" PRIMARY KEY")]
            key = [name]
        columns[name] = rest.strip()
    if not key:
        raise ConfigurationError(f"table {match.group(1)} has no primary key")
    first = key[0]
    partition = _split_top(first[1:-1]) if first.startswith("(") else [first]
    order = dict.fromkeys(key[1:], "ASC")
    declared = _CLUSTERING_ORDER.search(match.group(3) or "")
    for item in _split_top(declared.group(1)) if declared else []:
        column, _, direction = item.partition(" ")
        order[column] = direction.strip().upper() or "ASC"
    return Table(match.group(1), columns, tuple(partition), tuple(key[1:]), order)


def tables(statements: list[str] | None = None) -> dict[str, Table]:
    """Every table of the schema by name."""
    found = (parse_table(s) for s in (load_statements() if statements is None else statements))
    return {t.name: t for t in found if t is not None}


def keyspace_statement(settings: Settings) -> str:
    replication = settings.cassandra_replication.strip()
    if not (replication.startswith("{") and replication.endswith("}")):
        raise ConfigurationError(f"CHAT_CASSANDRA_REPLICATION is not a CQL map: {replication!r}")
    return f"CREATE KEYSPACE IF NOT EXISTS {settings.cassandra_keyspace} WITH replication = {replication}"


def init_schema_sync(settings: Settings) -> list[str]:
    """Create the keyspace and every table, and add :data:`ADDED_COLUMNS` to tables that lack
    them (blocking). Returns the table names."""
    from cassandra import InvalidRequest

    from chat_events.store.cassandra_async import map_error
    from chat_events.store.cassandra_driver import build_cluster

    statements = load_statements()
    cluster: Any = build_cluster(settings)
    try:
        session = cluster.connect()
        timeout = max(settings.cassandra_request_timeout_s, 30.0)  # schema changes are slow
        session.execute(keyspace_statement(settings), timeout=timeout)
        session.set_keyspace(settings.cassandra_keyspace)
        for statement in statements:
            session.execute(statement, timeout=timeout)
        for statement in add_column_statements():
            try:
                session.execute(statement, timeout=timeout)
            except InvalidRequest as exc:
                if not column_exists_error(exc):
                    raise
    except Exception as exc:
        mapped = map_error(exc)
        if mapped is None or mapped is exc:
            raise
        raise mapped from exc
    finally:
        cluster.shutdown()
    return list(tables(statements))


async def init_schema(settings: Settings) -> list[str]:
    """:func:`init_schema_sync` on a worker thread (the driver's schema calls block)."""
    return await asyncio.to_thread(init_schema_sync, settings)
