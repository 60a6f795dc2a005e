"""Prepared statements name their keyspace (Cassandra 5 warns on unqualified ones)."""

from __future__ import annotations

from chat_events.store.cassandra_driver import qualify_tables


def test_every_table_reference_is_qualified_once() -> None:
    assert qualify_tables("SELECT a FROM messages WHERE x = ?", "ks") == "SELECT a FROM ks.messages WHERE x = ?"
    assert qualify_tables("INSERT INTO inbox (a) VALUES (?)", "ks") == "INSERT INTO ks.inbox (a) VALUES (?)"
    assert qualify_tables("UPDATE groups SET a = ? WHERE b = ?", "ks") == "UPDATE ks.groups SET a = ? WHERE b = ?"
    assert qualify_tables("SELECT a FROM ks.messages", "ks") == "SELECT a FROM ks.messages"
