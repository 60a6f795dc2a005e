"""The Cassandra adapter over the in-memory CQL stand-in of :mod:`tests.unit.fake_cql`, shared by
the unit suites that run a store contract on it, and the statement-shape check they share."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from chat_events.settings import Settings
from chat_events.store import cassandra_driver, cql
from chat_events.store.cassandra import CassandraStore
from tests.unit.fake_cql import Engine, FakeBatch, FakeCluster, parse
from tests.unit.test_cassandra_cql import _check_select


@contextlib.asynccontextmanager
async def stand_in_store(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[CassandraStore]:
    """An open :class:`CassandraStore` whose driver is the stand-in (pages of 7 rows)."""
    cluster = FakeCluster(Engine(), page_size=7)
    monkeypatch.setattr(cassandra_driver, "build_cluster", lambda settings: cluster)
    monkeypatch.setattr(cassandra_driver, "BatchStatement", FakeBatch)
    async with CassandraStore(Settings(cassandra_contact_points="127.0.0.1")) as adapter:
        yield adapter


def assert_fits_schema(statement: str) -> None:
    """The statement names only columns of its table (``schemas/cassandra.cql``); an INSERT
    writes the whole primary key, a SELECT reads by partition key and clustering order."""
    stmt = parse(statement)
    table = cql.tables()[stmt.table]
    assert set(stmt.columns) | {c for c, _ in stmt.where} <= set(table.columns)
    if stmt.kind == "INSERT":
        assert set(table.primary_key) <= set(stmt.columns) and stmt.markers == len(stmt.columns)
    else:
        _check_select(stmt, table.partition_key, table.clustering)
