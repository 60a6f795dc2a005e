"""The Cassandra adapter's group administration without a server: the groups contract
suite over the in-memory stand-in of ``fake_cql``, and the mixin's statements checked against
``schemas/cassandra.cql``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import tests.contract.test_store_groups_contract as contract
from chat_events.settings import Settings
from chat_events.store import cassandra_driver, cql
from chat_events.store.cassandra import CassandraStore
from chat_events.store.cassandra_groups import GROUP_STATEMENTS
from tests.unit.fake_cql import Engine, FakeBatch, FakeCluster, parse
from tests.unit.test_cassandra_cql import _check_select

CONTRACT = sorted(name for name in dir(contract) if name.startswith("test_"))


@pytest.fixture
async def store(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[CassandraStore]:
    cluster = FakeCluster(Engine(), page_size=7)
    monkeypatch.setattr(cassandra_driver, "build_cluster", lambda settings: cluster)
    monkeypatch.setattr(cassandra_driver, "BatchStatement", FakeBatch)
    async with CassandraStore(Settings(cassandra_contact_points="127.0.0.1")) as adapter:
        yield adapter


@pytest.mark.parametrize("name", CONTRACT)
async def test_group_contract_on_the_stand_in(name: str, store: CassandraStore) -> None:
    await getattr(contract, name)(store)


@pytest.mark.parametrize("name", sorted(GROUP_STATEMENTS))
def test_group_statements_fit_the_schema(name: str) -> None:
    stmt = parse(GROUP_STATEMENTS[name])
    table = cql.tables()[stmt.table]
    assert set(stmt.columns) | {c for c, _ in stmt.where} <= set(table.columns)
    if stmt.kind == "INSERT":
        assert set(table.primary_key) <= set(stmt.columns) and stmt.markers == len(stmt.columns)
    else:
        _check_select(stmt, table.partition_key, table.clustering)


def test_the_store_prepares_the_sync_statements_too(store: CassandraStore) -> None:
    assert set(GROUP_STATEMENTS) <= set(store._db._prepared)
