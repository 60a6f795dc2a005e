"""The Cassandra adapter's seq ranges and device progress without a server: the sync contract
suite over the in-memory stand-in of ``fake_cql``, and the mixin's statements checked against
``schemas/cassandra.cql``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import tests.contract.test_store_sync_contract as contract
from chat_events.store.cassandra import CassandraStore
from chat_events.store.cassandra_sync import SYNC_STATEMENTS
from tests.unit.cql_stand_in import assert_fits_schema, stand_in_store

CONTRACT = sorted(name for name in dir(contract) if name.startswith("test_"))


@pytest.fixture
async def store(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[CassandraStore]:
    async with stand_in_store(monkeypatch) as adapter:
        yield adapter


@pytest.mark.parametrize("name", CONTRACT)
async def test_sync_contract_on_the_stand_in(name: str, store: CassandraStore) -> None:
    await getattr(contract, name)(store)


@pytest.mark.parametrize("name", sorted(SYNC_STATEMENTS))
def test_sync_statements_fit_the_schema(name: str) -> None:
    assert_fits_schema(SYNC_STATEMENTS[name])


def test_the_store_prepares_the_sync_statements_too(store: CassandraStore) -> None:
    assert set(SYNC_STATEMENTS) <= set(store._db._prepared)
