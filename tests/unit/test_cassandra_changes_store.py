"""Changes to sent messages on the in-memory Cassandra stand-in: the changes contract, the
mixin's statements against ``schemas/cassandra.cql``, and the pure reaction decisions both
adapters share (``chat_events/store/message_changes.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import tests.contract.test_store_changes_contract as contract
from chat_events.events.types import ChatMessage
from chat_events.store import cql
from chat_events.store.cassandra import CassandraStore
from chat_events.store.cassandra_changes import CHANGES_STATEMENTS, message_update
from chat_events.store.message_changes import active_reactions, reactions_to_write
from chat_events.store.models import Reaction
from tests.unit.cql_stand_in import stand_in_store
from tests.unit.fake_cql import check_type, parse
from tests.unit.test_cassandra_cql import _check_select

CONTRACT = sorted(name for name in dir(contract) if name.startswith("test_"))


@pytest.fixture
async def store(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[CassandraStore]:
    async with stand_in_store(monkeypatch) as adapter:
        yield adapter


@pytest.mark.parametrize("name", CONTRACT)
async def test_changes_contract_on_the_stand_in(name: str, store: CassandraStore) -> None:
    await getattr(contract, name)(store)


@pytest.mark.parametrize("name", sorted(CHANGES_STATEMENTS))
def test_changes_statements_fit_the_schema(name: str) -> None:
    stmt = parse(CHANGES_STATEMENTS[name])
    table = cql.tables()[stmt.table]
    assert set(stmt.columns) | {c for c, _ in stmt.where} <= set(table.columns)
    if stmt.kind == "INSERT":
        assert set(table.primary_key) <= set(stmt.columns) and stmt.markers == len(stmt.columns)
    elif stmt.kind == "UPDATE":
        assert dict(stmt.where) == dict.fromkeys(table.primary_key, "=")  # one row, by its whole key
        assert not set(stmt.columns) & set(table.primary_key)
    else:
        _check_select(stmt, table.partition_key, table.clustering)


def test_a_message_update_binds_its_row_key_and_no_null() -> None:
    m = ChatMessage(
        message_id="m",
        conversation_id="c",
        seq=2001,
        sender_id="a",
        target_type="user",
        target_id="b",
        message_type="text",
        payload="",
        status="recalled",
        changed_seq=2002,
    )
    name, values = message_update(m)
    stmt = parse(CHANGES_STATEMENTS[name])
    types = cql.tables()["messages"].columns
    columns = [*stmt.columns, *(c for c, _ in stmt.where)]
    assert dict(zip(columns, values, strict=True)) == {
        "payload": "",
        "mentions": [],
        "status": "recalled",
        "edited_at_ms": 0,
        "changed_seq": 2002,
        "conversation_id": "c",
        "bucket": 2,
        "seq": 2001,
    }
    assert all(check_type(types[c], v) for c, v in zip(columns, values, strict=True))


def test_the_store_prepares_the_changes_statements_too(store: CassandraStore) -> None:
    assert set(CHANGES_STATEMENTS) <= set(store._db._prepared)


def _r(user: str, at_ms: int, *, emoji: str = "👍", active: bool = True, message_id: str = "m") -> Reaction:
    return Reaction(message_id=message_id, user_id=user, emoji=emoji, active=active, at_ms=at_ms)


def test_reactions_to_write_keep_a_newer_stored_row_and_one_write_per_row() -> None:
    stored = {("m", "bob", "👍"): 50, ("m", "carol", "👍"): 10}
    incoming = [_r("bob", 40, active=False), _r("carol", 10), _r("dave", 5), _r("dave", 7, active=False), _r("dave", 6)]
    assert reactions_to_write(stored, incoming) == [_r("carol", 10), _r("dave", 7, active=False)]
    assert reactions_to_write({}, []) == []


def test_active_reactions_in_reaction_order() -> None:
    rows = [
        _r("bob", 20),
        _r("alice", 20),
        _r("carol", 5, emoji="❤️"),
        _r("dave", 1, active=False),
        _r("erin", 9, message_id="n", active=False),
    ]
    grouped = active_reactions(rows)
    assert grouped == {"m": {"❤️": ("carol",), "👍": ("alice", "bob")}}  # a tie in time: by user id
    assert list(grouped["m"]) == ["❤️", "👍"]  # emojis in the order of their first reaction
