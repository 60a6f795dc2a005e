"""The blocks contract on the in-memory Cassandra stand-in, and the new statement against the
schema (the real Cassandra runs the same contract in ``tests/contract``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import tests.contract.test_store_blocks_contract as contract
from chat_events.store import cassandra_rows, cql
from chat_events.store.port import MessageStore
from tests.unit.cql_stand_in import stand_in_store
from tests.unit.fake_cql import parse

CONTRACT = sorted(name for name in dir(contract) if name.startswith("test_"))


@pytest.fixture
async def store(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MessageStore]:
    async with stand_in_store(monkeypatch) as adapter:
        yield adapter


@pytest.mark.parametrize("name", CONTRACT)
async def test_blocks_contract_on_the_stand_in(name: str, store: MessageStore) -> None:
    await getattr(contract, name)(store)


def test_the_blocks_by_statement_reads_one_blocker_partition() -> None:
    stmt = parse(cassandra_rows.STATEMENTS["blocks_by"])
    table = cql.tables()[stmt.table]
    assert stmt.where == (("blocker_id", "="),)
    assert table.partition_key == ("blocker_id",)
