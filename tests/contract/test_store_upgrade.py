"""An existing store is brought up to date, keeping its data: the SQLite file of schema v1 on
open, a Cassandra keyspace created before ``messages.origin_envelope_id`` by ``store init``
(real Apache Cassandra, as in the contract suite). Messages stored before have no origin, new
ones get theirs, and opening or initialising again changes nothing."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

import tests.contract.test_store_contract as contract
from chat_events.settings import Settings
from chat_events.store import cassandra_rows, cql, sqlite_rows, sqlite_schema
from chat_events.store.cassandra_plan import bucket
from chat_events.store.port import MessageStore


async def _check_upgraded(store: MessageStore, legacy_id: str) -> None:
    legacy = await store.get_message(legacy_id)
    assert legacy is not None and legacy.payload == "message 1 ✓"
    assert await store.message_origins([legacy_id]) == {}  # stored before origins: none recorded
    new, origin = contract.message(2), str(uuid.uuid4())
    await store.save_messages([new], {new.message_id: origin})
    assert await store.message_origins([legacy_id, new.message_id]) == {new.message_id: origin}
    assert [m.seq for m in (await store.conversation_messages(contract.CONV, after_seq=0)).items] == [1, 2]


# --- the embedded store ------------------------------------------------------------------


SQLITE_V1_MESSAGE_COLS = (
    "message_id, conversation_id, seq, sender_id, target_type, target_id, message_type, payload, "
    "client_msg_id, mentions, sent_at_ms, stored_at_ms, status"
)
"""The ``messages`` columns of v1 (``sqlite_rows.MESSAGE_COLS`` starts with them)."""


def sqlite_v1_schema() -> str:
    """``SCHEMA`` as of v1: without the columns added since."""
    schema = sqlite_schema.SCHEMA
    for _, column, kind in sqlite_schema.ADDED_COLUMNS:
        schema, found = re.subn(rf"^\s*{column} {kind},[^\n]*\n", "", schema, flags=re.MULTILINE)
        assert found == 1, column
    return schema


async def test_an_embedded_store_of_schema_v1_gets_the_origin_column_on_open(tmp_path: Path) -> None:
    from chat_events.store.embedded import EmbeddedStore

    path = tmp_path / "store.sqlite3"
    legacy = contract.message(1)
    db = sqlite3.connect(path)
    db.executescript(f"{sqlite_v1_schema()}; PRAGMA user_version=1;")
    v1_count = len(SQLITE_V1_MESSAGE_COLS.split(","))
    assert sqlite_rows.MESSAGE_COLS.startswith(SQLITE_V1_MESSAGE_COLS)
    marks = ",".join("?" * v1_count)
    db.execute(
        f"INSERT INTO messages ({SQLITE_V1_MESSAGE_COLS}) VALUES ({marks})",
        sqlite_rows.message_to_row(legacy)[:v1_count],
    )
    db.execute(  # an inbox entry from before mentioned and counted
        "INSERT INTO inbox VALUES ('bob', 1, ?, ?, 1, 'alice', 5)", (legacy.message_id, contract.CONV)
    )
    db.execute(  # a conversation row from before hidden and version
        "INSERT INTO conversations VALUES ('bob', ?, ?, 1, 1, 5, 0, 1, 0, 0)", (contract.CONV, legacy.message_id)
    )
    db.commit()
    db.close()

    async with EmbeddedStore(path) as store:
        await _check_upgraded(store, legacy.message_id)
        row = (await store.get_conversations([("bob", contract.CONV)]))[("bob", contract.CONV)]
        assert (row.unread, row.hidden, row.version) == (1, False, 0)
        [old_entry] = (await store.inbox_after("bob", 0)).items
        assert (old_entry.mentioned, old_entry.counted) == (False, True)
        read = await store.mark_read("bob", contract.CONV, 0)
        assert read is not None and read.unread == 1  # an old entry still counts
    async with EmbeddedStore(path) as store:  # v2 now: opened as it is
        assert await store.get_message(legacy.message_id) == legacy
        assert len(await store.message_origins([legacy.message_id, str(uuid.uuid4())])) == 0
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == sqlite_schema.SCHEMA_VERSION == 4
        assert "origin_envelope_id" in {row[1] for row in db.execute("PRAGMA table_info(messages)")}
        assert {"hidden", "version"} <= {row[1] for row in db.execute("PRAGMA table_info(conversations)")}
    finally:
        db.close()


# --- Cassandra ---------------------------------------------------------------------------


CASSANDRA_V1_MESSAGE_COLS = (
    "conversation_id, bucket, seq, message_id, sender_id, target_type, target_id, message_type, payload, "
    "client_msg_id, mentions, sent_at_ms, stored_at_ms, status"
)
"""The ``messages`` columns of the first version (``cassandra_rows.MESSAGE_COLS`` starts with them)."""


def cassandra_v1_statements() -> list[str]:
    """The schema file's statements without the columns added since (the first version)."""
    statements = cql.load_statements()
    for table, column, kind in cql.ADDED_COLUMNS:
        [index] = [i for i, s in enumerate(statements) if s.startswith(f"CREATE TABLE IF NOT EXISTS {table} (")]
        assert f" {column} {kind}," in statements[index]
        statements[index] = statements[index].replace(f" {column} {kind},", "")
    return statements


def _create_v1_keyspace(settings: Settings, legacy_values: dict[str, tuple[Any, ...]]) -> None:
    """A keyspace as ``store init`` made it before the origin column, with one message in it
    written as the adapter wrote it then (blocking)."""
    from chat_events.store.cassandra_driver import build_cluster

    cluster: Any = build_cluster(settings)
    try:
        session = cluster.connect()
        session.execute(cql.keyspace_statement(settings), timeout=60)
        session.set_keyspace(settings.cassandra_keyspace)
        for statement in cassandra_v1_statements():
            session.execute(statement, timeout=60)
        assert (
            "origin_envelope_id"
            not in cluster.metadata.keyspaces[settings.cassandra_keyspace].tables["messages"].columns
        )
        inserts = {
            "msg_insert_v1": f"INSERT INTO messages ({CASSANDRA_V1_MESSAGE_COLS}) VALUES "
            f"({', '.join('?' * len(CASSANDRA_V1_MESSAGE_COLS.split(',')))})",
            "by_id_insert": cassandra_rows.STATEMENTS["by_id_insert"],
            "conv_seq_set": cassandra_rows.STATEMENTS["conv_seq_set"],
        }
        for name, text in inserts.items():
            session.execute(session.prepare(text), legacy_values[name], timeout=30)
    finally:
        cluster.shutdown()


async def test_store_init_adds_the_origin_column_to_an_existing_cassandra_keyspace(
    request: pytest.FixtureRequest,
) -> None:
    from chat_events.store.cassandra import CassandraStore

    keyspace = f"chat_upgrade_{uuid.uuid4().hex[:12]}"
    if os.environ.get("CHAT_CASSANDRA_CONTACT_POINTS"):
        settings = Settings(cassandra_keyspace=keyspace)
    else:
        engines = request.getfixturevalue("engines")
        settings = Settings(cassandra_contact_points=engines.cassandra_contact_point(), cassandra_keyspace=keyspace)
    legacy = contract.message(1)
    assert cassandra_rows.MESSAGE_COLS.startswith(CASSANDRA_V1_MESSAGE_COLS)
    values = {
        "msg_insert_v1": cassandra_rows.message_values(legacy)[: len(CASSANDRA_V1_MESSAGE_COLS.split(","))],
        "by_id_insert": (legacy.message_id, legacy.conversation_id, legacy.seq),
        "conv_seq_set": (legacy.conversation_id, legacy.seq),
    }
    assert bucket(legacy.seq) == values["msg_insert_v1"][1]
    await asyncio.to_thread(_create_v1_keyspace, settings, values)

    tables = await cql.init_schema(settings)  # ALTER TABLE messages ADD origin_envelope_id text
    assert await cql.init_schema(settings) == tables  # again: "already exists" counts as done
    async with CassandraStore(settings) as store:
        await _check_upgraded(store, legacy.message_id)
        assert await store.get_message(legacy.message_id) == legacy  # the v7 columns absent: their defaults
