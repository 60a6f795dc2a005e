"""The presence contract on the in-memory Cassandra stand-in, and the new statements against the
schema (the real Cassandra runs the same contract in ``tests/contract``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import tests.contract.test_store_presence_contract as contract
from chat_events.store import cql
from chat_events.store.cassandra_presence import PRESENCE_STATEMENTS
from chat_events.store.port import MessageStore
from tests.unit.cql_stand_in import stand_in_store
from tests.unit.fake_cql import parse

CONTRACT = sorted(name for name in dir(contract) if name.startswith("test_"))


@pytest.fixture
async def store(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MessageStore]:
    async with stand_in_store(monkeypatch) as adapter:
        yield adapter


@pytest.mark.parametrize("name", CONTRACT)
async def test_presence_contract_on_the_stand_in(name: str, store: MessageStore) -> None:
    await getattr(contract, name)(store)


@pytest.mark.parametrize("name", sorted(PRESENCE_STATEMENTS))
def test_the_presence_statements_use_the_user_presence_partition(name: str) -> None:
    stmt = parse(PRESENCE_STATEMENTS[name])
    table = cql.tables()[stmt.table]
    assert stmt.table == "user_presence"
    assert table.partition_key == ("user_id",)
    assert set(stmt.columns) <= set(table.columns)
    if stmt.kind == "SELECT":
        assert stmt.where == (("user_id", "IN"),)
