"""The Cassandra adapter's own logic without a server: the store contract suite run against
:class:`CassandraStore` over the in-memory stand-in of ``fake_cql`` (statements parsed and
applied against the tables of ``schemas/cassandra.cql``, results paged through the real
asyncio bridge), and the pure write planning (seq checks, commit batches, packing)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import replace

import pytest

import tests.contract.test_store_contract as contract
from chat_events.errors import SeqConflictError, StoreUnavailableError
from chat_events.events.types import ChatMessage
from chat_events.settings import Settings
from chat_events.store import cassandra_driver, cassandra_rows
from chat_events.store.cassandra import CassandraStore
from chat_events.store.cassandra_plan import (
    BATCH_BUDGET_BYTES,
    StoredMessages,
    Write,
    conversation_commits,
    cover,
    message_writes,
    new_inbox_entries,
    new_messages,
    pack,
    write_size,
)
from chat_events.store.models import ConversationState, InboxEntry
from chat_events.streams.inbox_logic import fold_conversation
from tests.unit.fake_cql import Engine, FakeBatch, FakeCluster

CONTRACT = sorted(name for name in dir(contract) if name.startswith("test_"))


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[CassandraStore, Engine, FakeCluster]]:
    engine = Engine()
    cluster = FakeCluster(engine, page_size=7)
    monkeypatch.setattr(cassandra_driver, "build_cluster", lambda settings: cluster)
    monkeypatch.setattr(cassandra_driver, "BatchStatement", FakeBatch)
    store = CassandraStore(Settings(cassandra_contact_points="127.0.0.1"))
    async with store:
        yield store, engine, cluster
    assert cluster.shut_down


@pytest.mark.parametrize("name", CONTRACT)
async def test_store_contract_on_the_stand_in(name: str, fake: tuple[CassandraStore, Engine, FakeCluster]) -> None:
    await getattr(contract, name)(fake[0])


async def test_statements_are_prepared_once_and_marked_idempotent(
    fake: tuple[CassandraStore, Engine, FakeCluster],
) -> None:
    store, _, _ = fake
    prepared = store._db._prepared
    assert prepared and all(p.is_idempotent for p in prepared.values())
    await store.open()  # already open: nothing is prepared again
    assert store._db._prepared is prepared


async def test_a_crashed_commit_leaves_no_visible_message_and_no_taken_seq(
    fake: tuple[CassandraStore, Engine, FakeCluster],
) -> None:
    store = fake[0]
    first, second = contract.message(1), contract.message(2)
    await store.save_messages([first])
    # the rows of `second` are written, its commit is not (a crash between the two steps)
    await store._db.rows("msg_insert", *cassandra_rows.message_values(second))
    await store._db.rows("by_id_insert", second.message_id, second.conversation_id, second.seq)
    assert await store.get_message(second.message_id) is None
    assert await store.max_conversation_seqs([contract.CONV]) == {contract.CONV: 1}
    assert [m.seq for m in (await store.conversation_messages(contract.CONV, after_seq=0)).items] == [1]
    assert [m.seq for m in (await store.conversation_messages(contract.CONV, before_seq=10)).items] == [1]
    other = contract.message(2)  # the worker, not finding `second`, gives seq 2 to another message
    await store.save_messages([other])
    assert (await store.conversation_messages(contract.CONV, after_seq=1)).items == (other,)
    assert await store.find_messages([second.message_id]) == {}  # its left-over lookup points at `other`


async def test_a_replay_after_a_lost_message_commit_stores_the_message(
    fake: tuple[CassandraStore, Engine, FakeCluster],
) -> None:
    store = fake[0]
    first, second = contract.message(1), contract.message(2, client_msg_id="n-2")
    await store.save_messages([first])
    for name, values in [
        w for [w] in message_writes([second], lambda m: ("msg_insert", cassandra_rows.message_values(m)))
    ]:
        await store._db.rows(name, *values)  # step one of `second`, no step two
    assert await store.find_client_messages([("alice", "n-2")]) == {}
    await store.save_messages([second])  # the record is handled again: the same message, the same seq
    assert await store.find_client_messages([("alice", "n-2")]) == {("alice", "n-2"): second}
    assert await store.max_conversation_seqs([contract.CONV]) == {contract.CONV: 2}


def _bob_receives(messages: list[ChatMessage], first_seq: int = 1) -> tuple[list[InboxEntry], ConversationState]:
    state: ConversationState | None = None
    entries = []
    for user_seq, m in enumerate(messages, start=first_seq):
        e = contract.entry("bob", user_seq, m)
        state = fold_conversation(state, e)
        entries.append(e)
    assert state is not None
    return entries, state


async def test_inbox_entries_are_written_first_then_committed_per_user_and_every_batch_fits(
    fake: tuple[CassandraStore, Engine, FakeCluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = fake[0]
    small, small_state = _bob_receives([contract.message(1)])
    await store.save_inbox(small, [small_state])
    calls: list[list[list[Write]]] = []
    real_write_all = store._db.write_all

    async def recording(units: Iterable[Sequence[Write]]) -> None:
        made = [list(unit) for unit in units]
        calls.append(made)
        await real_write_all(made)

    monkeypatch.setattr(store._db, "write_all", recording)
    entries, state = _bob_receives([contract.message(seq) for seq in range(1, 201)])
    await store.save_inbox(entries[1:], [state])
    rows_first, commit = calls  # the entry rows, one unit each, then the user's commit
    assert {name for unit in rows_first for name, _ in unit} == {
        "inbox_insert",
        "inbox_by_msg_insert",
        "inbox_by_conv_insert",
    }
    assert all(len(unit) == 1 for unit in rows_first)
    assert all(sum(write_size(w) for w in batch) <= BATCH_BUDGET_BYTES for batch in pack(rows_first))
    [unit] = commit  # one unit, one partition key (bob): applied as one mutation
    assert {name for name, _ in unit} == {"conv_activity", "user_seq_set"}
    assert [e.user_seq for e in (await store.inbox_after("bob", 0, limit=500)).items] == list(range(1, 201))


async def test_a_lost_inbox_commit_leaves_no_visible_entry_no_taken_seq_and_no_unread(
    fake: tuple[CassandraStore, Engine, FakeCluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry rows of a save are written, its commit is lost (a crash between
    the two): nothing of it is visible, and the replay stores it with the right unread count."""
    store = fake[0]
    first, first_state = _bob_receives([contract.message(1)])
    await store.save_inbox(first, [first_state])
    entries, state = _bob_receives([contract.message(seq) for seq in range(1, 151)])
    real_write_all = store._db.write_all
    calls = 0

    async def commit_lost(units: Iterable[Sequence[Write]]) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise StoreUnavailableError("the node died before the commit")
        await real_write_all(units)

    monkeypatch.setattr(store._db, "write_all", commit_lost)
    with pytest.raises(StoreUnavailableError):
        await store.save_inbox(entries[1:], [state])
    monkeypatch.setattr(store._db, "write_all", real_write_all)
    assert await store.max_user_seqs(["bob"]) == {"bob": 1}
    assert await store.find_inbox_entries([("bob", entries[5].message_id)]) == {}  # its replay is not skipped
    assert (await store.inbox_after("bob", 0)).items == tuple(first)
    read = await store.mark_read("bob", contract.CONV, 0)  # the recount sees only committed entries
    assert read is not None and read.unread == 1
    other, _ = _bob_receives([contract.message(2)], first_seq=2)  # seq 2 is free: the left-over holds none
    await store.save_inbox(other, [])
    assert [e.message_id for e in (await store.inbox_after("bob", 1)).items] == [other[0].message_id]


def test_new_messages_follow_the_embedded_store() -> None:
    a, b = contract.message(1, client_msg_id="n1"), contract.message(2)
    nothing = StoredMessages(by_id={}, at_seq={}, by_client={}, max_seqs={})
    assert new_messages([a, b, a], nothing) == [a, b]  # a repeat within the batch is a replay
    stored = StoredMessages(by_id={a.message_id: (a.conversation_id, 1)}, at_seq={}, by_client={}, max_seqs={})
    assert new_messages([a, b], stored) == [b]
    with pytest.raises(SeqConflictError):
        new_messages([replace(a, seq=3)], stored)
    with pytest.raises(SeqConflictError):
        new_messages([a, replace(b, seq=1)], nothing)  # (conversation, 1) taken within the batch
    with pytest.raises(SeqConflictError):  # a retried send under a new id
        new_messages([a, replace(contract.message(3), client_msg_id="n1")], nothing)
    conv = a.conversation_id
    taken = StoredMessages(by_id={}, at_seq={(conv, 2): "x"}, by_client={}, max_seqs={conv: 2})
    with pytest.raises(SeqConflictError):
        new_messages([b], taken)
    orphan = replace(taken, max_seqs={conv: 1})  # row above the committed maximum
    assert new_messages([b], orphan) == [b]


def test_messages_are_written_first_then_committed_by_the_conversation_maxima() -> None:
    messages = [contract.message(seq, client_msg_id=f"n{seq}") for seq in range(1, 5)]
    messages.append(contract.message(1, conv="g1"))
    units = message_writes(messages, lambda m: ("msg_insert", (m.message_id,)))
    assert all(len(unit) == 1 for unit in units)  # rows only: nothing visible yet
    assert [name for [(name, _)] in units][:3] == ["msg_insert", "by_id_insert", "by_client_insert"]
    assert sum(name == "by_client_insert" for [(name, _)] in units) == 4  # g1's message has no client id
    assert conversation_commits(messages, {contract.CONV: 0}) == [
        [("conv_seq_set", (contract.CONV, 4))],
        [("conv_seq_set", ("g1", 1))],
    ]
    assert conversation_commits(messages, {contract.CONV: 9, "g1": 1}) == []  # never lowered


def test_packing_never_splits_a_unit() -> None:
    units = [[("a", ("x" * 100,))] * n for n in (1, 5, 2, 30, 1)]
    batches = pack(units, budget=700)
    assert [len(b) for b in batches] == [1, 5, 2, 30, 1]  # 120 bytes a write; the 30-write unit alone
    assert [len(b) for b in pack([[("a", ("x" * 100,))]] * 3, budget=700)] == [3]
    flat = [w for b in batches for w in b]
    assert flat == [w for u in units for w in u]
    assert pack([]) == []


def test_new_inbox_entries() -> None:
    m1, m2 = contract.message(1), contract.message(2)
    e1, e2 = contract.entry("bob", 1, m1), contract.entry("bob", 2, m2)
    assert new_inbox_entries([e1, e2], {("bob", m1.message_id): 1}, {("bob", 1): m1.message_id}) == [e2]
    with pytest.raises(SeqConflictError):
        new_inbox_entries([replace(e1, user_seq=5)], {("bob", m1.message_id): 1}, {})
    with pytest.raises(SeqConflictError):
        new_inbox_entries([replace(e2, user_seq=1)], {}, {("bob", 1): m1.message_id})


@pytest.mark.parametrize(
    "pairs",
    [
        set(),
        {("a", "m1")},
        {(u, f"m{i}") for i in range(7) for u in ("alice", "bob")},  # one 1:1 conversation
        {(u, f"c{c}-m{i}") for c in range(60) for i in range(3) for u in (f"u{c}a", f"u{c}b")},  # W1
        {(f"u{i}", "big") for i in range(250)},  # one message, many recipients
        {("u", f"m{i}") for i in range(250)},  # one user, many messages
        {(f"s{i}", f"c{i}-{j}") for i in range(200) for j in range(i % 3 + 1)},  # senders' own ids
    ],
)
def test_cover_requests_cover_every_pair_within_the_limit(pairs: set[tuple[str, str]]) -> None:
    requests = cover(pairs, 100)
    covered = {(a, b) for a_list, b_list in requests for a in a_list for b in b_list}
    assert pairs <= covered
    assert all(1 <= len(a) * len(b) <= 100 for a, b in requests)
    assert all(len(set(a)) == len(a) and len(set(b)) == len(b) for a, b in requests)


def test_cover_groups_by_partner_set_before_merging() -> None:
    one_conversation = {(u, f"m{i}") for i in range(30) for u in ("alice", "bob")}
    assert [(sorted(a), len(b)) for a, b in cover(one_conversation, 100)] == [(["alice", "bob"], 30)]
    w1 = {(u, f"c{c}-m{i}") for c in range(60) for i in range(3) for u in (f"u{c}a", f"u{c}b")}
    requests = cover(w1, 100)
    assert len(requests) < 60 / 3  # conversations merged, not one request each
    assert len(cover({(f"u{i}", "big") for i in range(250)}, 100)) == 3
