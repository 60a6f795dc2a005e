"""The blocks contract on the in-memory Cassandra stand-in, and the new statement against the
schema (the real Cassandra runs the same contract in ``tests/contract``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import tests.contract.test_store_blocks_contract as contract
from chat_events.settings import Settings
from chat_events.store import cassandra_driver, cassandra_rows, cql
from chat_events.store.cassandra import CassandraStore
from chat_events.store.port import MessageStore
from tests.unit.fake_cql import Engine, FakeBatch, FakeCluster, parse

CONTRACT = sorted(name for name in dir(contract) if name.startswith("test_"))


@pytest.fixture
async def store(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MessageStore]:
    cluster = FakeCluster(Engine(), page_size=7)
    monkeypatch.setattr(cassandra_driver, "build_cluster", lambda settings: cluster)
    monkeypatch.setattr(cassandra_driver, "BatchStatement", FakeBatch)
    async with CassandraStore(Settings(cassandra_contact_points="127.0.0.1")) as adapter:
        yield adapter


@pytest.mark.parametrize("name", CONTRACT)
async def test_blocks_contract_on_the_stand_in(name: str, store: MessageStore) -> None:
    await getattr(contract, name)(store)


def test_the_blocks_by_statement_reads_one_blocker_partition() -> None:
    stmt = parse(cassandra_rows.STATEMENTS["blocks_by"])
    table = cql.tables()[stmt.table]
    assert stmt.where == (("blocker_id", "="),)
    assert table.partition_key == ("blocker_id",)
