"""What every store adapter must do (see ``chat_events/store/port.py``)."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from chat_events.errors import SeqConflictError
from chat_events.events.types import ChatMessage
from chat_events.store.models import ConversationState, Group, InboxEntry, Session, WriterReads
from chat_events.store.port import MessageStore
from chat_events.streams.inbox_logic import fold_conversation

CONV = "dm:alice:bob"


def message(seq: int, *, conv: str = CONV, sender: str = "alice", client_msg_id: str | None = None) -> ChatMessage:
    return ChatMessage(
        message_id=str(uuid.uuid4()),
        conversation_id=conv,
        seq=seq,
        sender_id=sender,
        target_type="user",
        target_id="bob",
        message_type="text",
        payload=f"message {seq} ✓",
        client_msg_id=client_msg_id,
        mentions=("bob",),
        sent_at_ms=1_700_000_000_000 + seq,
        stored_at_ms=1_700_000_000_100 + seq,
    )


def entry(user: str, user_seq: int, m: ChatMessage) -> InboxEntry:
    return InboxEntry(
        user_id=user,
        user_seq=user_seq,
        message_id=m.message_id,
        conversation_id=m.conversation_id,
        conversation_seq=m.seq,
        sender_id=m.sender_id,
        created_at_ms=m.stored_at_ms,
    )


async def test_messages_round_trip_and_lookup(store: MessageStore) -> None:
    first, second = message(1), message(2, client_msg_id="nonce-2")
    await store.save_messages([first, second])
    assert await store.get_message(first.message_id) == first
    assert await store.find_messages([first.message_id, second.message_id, str(uuid.uuid4())]) == {
        first.message_id: first,
        second.message_id: second,
    }
    assert await store.find_client_messages([("alice", "nonce-2"), ("alice", "other")]) == {
        ("alice", "nonce-2"): second
    }
    assert await store.max_conversation_seqs([CONV, "dm:x:y"]) == {CONV: 2, "dm:x:y": 0}


async def test_save_messages_is_idempotent_and_refuses_seq_conflicts(store: MessageStore) -> None:
    first = message(1)
    await store.save_messages([first])
    await store.save_messages([first])  # a replay
    assert (await store.conversation_messages(CONV, after_seq=0)).items == (first,)
    with pytest.raises(SeqConflictError):
        await store.save_messages([replace(first, seq=7)])  # same id, another seq
    with pytest.raises(SeqConflictError):
        await store.save_messages([message(1)])  # another id, a taken seq
    assert (await store.conversation_messages(CONV, after_seq=0)).items == (first,)


async def test_a_message_keeps_the_origin_it_was_stored_with(store: MessageStore) -> None:
    """The origin (the envelope id of the input that stored a message) is written by the save
    that stores the message and never replaced; a message saved without one has none (like
    those stored before origins were recorded); it is not part of the message."""
    first, second, legacy = message(1), message(2, client_msg_id="nonce-2"), message(3)
    origin_1, origin_2 = str(uuid.uuid4()), str(uuid.uuid4())
    ids = [first.message_id, second.message_id, legacy.message_id, str(uuid.uuid4())]
    assert await store.message_origins(ids) == {}
    await store.save_messages([first, second], {first.message_id: origin_1, second.message_id: origin_2})
    await store.save_messages([legacy])
    recorded = {first.message_id: origin_1, second.message_id: origin_2}
    assert await store.message_origins(ids) == recorded
    assert await store.message_origins([]) == {}

    await store.save_messages([first], {first.message_id: origin_1})  # a replay: the same origin
    # another origin for stored messages (with one or without): no change
    await store.save_messages([first, second, legacy], dict.fromkeys(ids, str(uuid.uuid4())))
    assert await store.message_origins(ids) == recorded
    assert await store.find_messages(ids) == {m.message_id: m for m in (first, second, legacy)}
    assert await store.find_client_messages([("alice", "nonce-2")]) == {("alice", "nonce-2"): second}
    assert (await store.conversation_messages(CONV, after_seq=0)).items == (first, second, legacy)


async def test_conversation_pages_by_seq_both_ways(store: MessageStore) -> None:
    messages = [message(seq) for seq in range(1, 2502)]  # crosses Cassandra's bucket bounds
    await store.save_messages(messages)
    page = await store.conversation_messages(CONV, after_seq=995, limit=10)
    assert [m.seq for m in page.items] == list(range(996, 1006)) and page.has_more
    last = await store.conversation_messages(CONV, after_seq=2495, limit=10)
    assert [m.seq for m in last.items] == list(range(2496, 2502)) and not last.has_more
    back = await store.conversation_messages(CONV, before_seq=2003, limit=5)
    assert [m.seq for m in back.items] == [2002, 2001, 2000, 1999, 1998] and back.has_more
    start = await store.conversation_messages(CONV, before_seq=3, limit=5)
    assert [m.seq for m in start.items] == [2, 1] and not start.has_more


async def test_recall_is_a_status_update(store: MessageStore) -> None:
    first = message(1)
    await store.save_messages([first])
    recalled = await store.set_message_status(first.message_id, "recalled")
    assert recalled == replace(first, status="recalled")
    assert (await store.conversation_messages(CONV, after_seq=0)).items == (recalled,)


async def test_inbox_entries_conversations_and_unread(store: MessageStore) -> None:
    m1, m2, m3 = message(1), message(2), message(3, sender="bob")
    await store.save_messages([m1, m2, m3])
    state: ConversationState | None = None
    entries = []
    for user_seq, m in enumerate((m1, m2, m3), start=1):
        e = entry("bob", user_seq, m)
        state = fold_conversation(state, e)
        entries.append(e)
    assert state is not None
    await store.save_inbox(entries, [state])
    await store.save_inbox(entries, [state])  # replay: no change
    assert await store.max_user_seqs(["bob", "carol"]) == {"bob": 3, "carol": 0}
    assert await store.find_inbox_entries([("bob", m2.message_id), ("bob", "nope")]) == {
        ("bob", m2.message_id): entries[1]
    }
    page = await store.inbox_after("bob", 1, limit=1)
    assert page.items == (entries[1],) and page.has_more
    assert (await store.inbox_after("bob", 2)).items == (entries[2],)
    [row] = await store.list_conversations("bob")
    # bob's own message (seq 3) marks everything up to it read
    assert (row.last_seq, row.last_user_seq, row.read_seq, row.unread) == (3, 3, 3, 0)
    assert row.last_message_id == m3.message_id


async def test_saves_checked_by_the_writer_store_the_same(store: MessageStore) -> None:
    """``checked`` (WriterReads): the single writer passes what it has just read; the rows,
    maxima, unread counts and kept flags are those of the same saves without it."""
    m1, m2, m3 = message(1), message(2, client_msg_id="n-2"), message(3, sender="bob")
    await store.save_messages([m1], checked=WriterReads(max_seqs={CONV: 0}))
    await store.save_messages([m2, m3], checked=WriterReads(max_seqs={CONV: 1}))
    assert await store.max_conversation_seqs([CONV]) == {CONV: 3}
    assert [m.seq for m in (await store.conversation_messages(CONV, after_seq=0)).items] == [1, 2, 3]
    assert await store.find_client_messages([("alice", "n-2")]) == {("alice", "n-2"): m2}
    s1 = fold_conversation(None, entry("bob", 1, m1))
    await store.save_inbox([entry("bob", 1, m1)], [s1], checked=WriterReads(max_seqs={"bob": 0}))
    stored = await store.set_conversation_flags("bob", CONV, pinned=True)
    assert stored is not None
    s2 = fold_conversation(s1, entry("bob", 2, m2))
    s3 = fold_conversation(s2, entry("bob", 3, m3))
    checked = WriterReads(max_seqs={"bob": 1}, conversations={("bob", CONV): stored})
    await store.save_inbox([entry("bob", 2, m2), entry("bob", 3, m3)], [s3], checked=checked)
    assert await store.max_user_seqs(["bob"]) == {"bob": 3}
    assert [e.user_seq for e in (await store.inbox_after("bob", 0)).items] == [1, 2, 3]
    [row] = await store.list_conversations("bob")
    assert (row.last_seq, row.read_seq, row.unread, row.pinned) == (3, 3, 0, True)


async def test_inbox_refuses_a_taken_user_seq(store: MessageStore) -> None:
    m1, m2 = message(1), message(2)
    await store.save_inbox([entry("bob", 1, m1)], [])
    with pytest.raises(SeqConflictError):
        await store.save_inbox([entry("bob", 1, m2)], [])
    assert [e.message_id for e in (await store.inbox_after("bob", 0)).items] == [m1.message_id]


async def test_one_save_takes_hundreds_of_entries_of_one_user(store: MessageStore) -> None:
    """A burst to one user (a reconnect backlog, a busy group) is one stage batch: 300 entries of
    bob in one call (Cassandra refuses a LOGGED batch of that size; the adapter must cope)."""
    messages = [message(seq) for seq in range(1, 301)]
    state: ConversationState | None = None
    entries = []
    for m in messages:
        e = entry("bob", m.seq, m)
        state = fold_conversation(state, e)
        entries.append(e)
    assert state is not None
    await store.save_inbox(entries, [state])
    await store.save_inbox(entries, [state])  # replay: no change
    assert await store.max_user_seqs(["bob"]) == {"bob": 300}
    found: list[InboxEntry] = []
    while len(found) < 300:
        page = await store.inbox_after("bob", found[-1].user_seq if found else 0, limit=120)
        found += page.items
        if not page.has_more:
            break
    assert found == entries
    assert await store.find_inbox_entries([("bob", messages[-1].message_id)]) == {
        ("bob", messages[-1].message_id): entries[-1]
    }
    [row] = await store.list_conversations("bob")
    assert (row.last_seq, row.last_user_seq, row.unread) == (300, 300, 300)
    read = await store.mark_read("bob", CONV, 100)
    assert read is not None and read.unread == 200


async def test_mark_read_recounts_unread_and_never_goes_back(store: MessageStore) -> None:
    messages = [message(seq) for seq in range(1, 6)]
    state = None
    entries = []
    for m in messages:
        e = entry("bob", m.seq, m)
        state = fold_conversation(state, e)
        entries.append(e)
    assert state is not None and state.unread == 5
    await store.save_inbox(entries, [state])
    read = await store.mark_read("bob", CONV, 3)
    assert read is not None and (read.read_seq, read.unread) == (3, 2)
    again = await store.mark_read("bob", CONV, 1)
    assert again is not None and (again.read_seq, again.unread) == (3, 2)
    assert await store.mark_read("bob", "dm:no:such", 3) is None


async def test_flags_survive_inbox_writes(store: MessageStore) -> None:
    m1, m2 = message(1), message(2)
    s1 = fold_conversation(None, entry("bob", 1, m1))
    await store.save_inbox([entry("bob", 1, m1)], [s1])
    flagged = await store.set_conversation_flags("bob", CONV, pinned=True, muted=True)
    assert flagged is not None and flagged.pinned and flagged.muted
    s2 = fold_conversation(s1, entry("bob", 2, m2))  # computed from a row read before the flags
    await store.save_inbox([entry("bob", 2, m2)], [s2])
    [row] = await store.list_conversations("bob")
    assert row.pinned and row.muted and row.unread == 2


async def test_remove_is_a_flag_a_new_message_undoes_and_versions_only_rise(store: MessageStore) -> None:
    m1, m2 = message(1), message(2)
    s1 = fold_conversation(None, entry("bob", 1, m1), version=10)
    await store.save_inbox([entry("bob", 1, m1)], [s1])
    hidden = await store.set_conversation_flags("bob", CONV, hidden=True, version=20)
    assert hidden is not None and hidden.hidden and hidden.version == 20 and not hidden.pinned
    [row] = await store.list_conversations("bob")  # still stored: removing is a flag
    assert row.hidden and row.version == 20
    assert (await store.set_conversation_flags("bob", CONV, pinned=True, version=5)).version == 20  # type: ignore[union-attr]
    read = await store.mark_read("bob", CONV, 1, version=30)
    assert read is not None and read.version == 30 and read.hidden
    s2 = fold_conversation(read, entry("bob", 2, m2), version=40)
    await store.save_inbox([entry("bob", 2, m2)], [s2])
    [row] = await store.list_conversations("bob")
    assert not row.hidden and row.version == 40 and row.pinned and row.unread == 1
    assert await store.set_conversation_flags("bob", "dm:no:such", hidden=True, version=50) is None
    assert await store.get_conversations([("bob", "dm:no:such")]) == {}


async def test_unread_mentions_count_and_recount_with_the_read_position(store: MessageStore) -> None:
    row = None
    entries = []
    for seq in (1, 2, 3):
        e = replace(entry("bob", seq, message(seq)), mentioned=seq != 2)
        row = fold_conversation(row, e, version=seq)
        entries.append(e)
    await store.save_inbox(entries, [row])  # type: ignore[list-item]
    [stored] = await store.list_conversations("bob")
    assert (stored.unread, stored.unread_mentions) == (3, 2)
    assert (await store.find_inbox_entries([("bob", entries[0].message_id)]))[
        ("bob", entries[0].message_id)
    ] == entries[0]
    read = await store.mark_read("bob", CONV, 1)
    assert read is not None and (read.unread, read.unread_mentions) == (2, 1)
    read = await store.mark_read("bob", CONV, 3)
    assert read is not None and (read.unread, read.unread_mentions) == (0, 0)


async def test_read_receipts_setting_is_a_status_last_writer_wins(store: MessageStore) -> None:
    assert await store.read_receipts_enabled(["bob", "carol"]) == {"bob": True, "carol": True}  # the default
    await store.set_read_receipts("bob", False, at_ms=200)
    await store.set_read_receipts("bob", True, at_ms=100)  # an older change, replayed late
    assert await store.read_receipts_enabled(["bob", "carol"]) == {"bob": False, "carol": True}
    await store.set_read_receipts("bob", True, at_ms=300)
    assert await store.read_receipts_enabled(["bob"]) == {"bob": True}


async def test_conversation_list_is_most_recent_first(store: MessageStore) -> None:
    rows = []
    for n, conv in enumerate(["g1", "g2", "g3"]):
        m = message(1, conv=conv)
        rows.append(fold_conversation(None, replace(entry("bob", n + 1, m), created_at_ms=1000 + n * (-1) ** n)))
    await store.save_inbox([], rows)
    assert [c.conversation_id for c in await store.list_conversations("bob")] == ["g3", "g1", "g2"]
    assert len(await store.list_conversations("bob", limit=2)) == 2


async def test_groups_and_membership_as_status(store: MessageStore) -> None:
    group = Group(group_id="g-1", name="Team", owner_id="alice", created_at_ms=100)
    await store.save_group(group, ["alice", "bob", "carol"])
    await store.save_group(group, ["alice", "bob", "carol"])
    assert await store.get_group("g-1") == group
    assert await store.get_group("g-none") is None
    await store.set_group_member("g-1", "carol", active=False, at_ms=200)
    await store.set_group_member("g-1", "carol", active=True, at_ms=150)  # older event: ignored
    await store.set_group_member("g-1", "dave", active=True, at_ms=300)
    assert await store.group_members(["g-1", "g-none"]) == {
        "g-1": frozenset({"alice", "bob", "dave"}),
        "g-none": frozenset(),
    }


async def test_blocks_as_status(store: MessageStore) -> None:
    await store.set_block("bob", "alice", active=True, at_ms=10)
    await store.set_block("carol", "alice", active=True, at_ms=10)
    await store.set_block("carol", "alice", active=False, at_ms=20)
    await store.set_block("carol", "alice", active=True, at_ms=15)  # older: ignored
    assert await store.blockers_of(["alice", "bob"]) == {"alice": frozenset({"bob"}), "bob": frozenset()}


async def test_sessions(store: MessageStore) -> None:
    s1 = Session(user_id="bob", session_id="s1", edge_id="edge-a", device_id="phone", since_ms=100)
    s2 = Session(user_id="bob", session_id="s2", edge_id="edge-b", device_id=None, since_ms=200)
    await store.save_session(s1)
    await store.save_session(s2)
    await store.save_session(s1)
    assert await store.sessions_of(["bob", "carol"]) == {"bob": (s1, s2), "carol": ()}
    assert await store.sessions_on_edge("edge-a") == [s1]
    assert await store.active_edge_ids() == ["edge-a", "edge-b"]
    await store.end_session("bob", "s1", at_ms=300)
    await store.save_session(s1)  # a replayed connect older than the end does not resurrect it
    assert await store.sessions_of(["bob"]) == {"bob": (s2,)}
    assert await store.sessions_on_edge("edge-a") == []
    assert await store.active_edge_ids() == ["edge-b"]


async def test_rate_limit_accounting_is_idempotent(store: MessageStore) -> None:
    for event_id in ("e1", "e2", "e2", "e3"):
        await store.record_rate_limited("bob", 60_000, event_id, "send")
    await store.record_rate_limited("bob", 120_000, "e4", "send")
    assert dict(await store.rate_limited_counts("bob")) == {60_000: 3, 120_000: 1}
    assert dict(await store.rate_limited_counts("bob", since_ms=100_000)) == {120_000: 1}


async def test_data_survives_reopening(store: MessageStore) -> None:
    """Closing the adapter (the SQLite file, or the Cassandra cluster connection) and opening it
    again finds what was written."""
    first = message(1)
    origin = str(uuid.uuid4())
    await store.save_messages([first], {first.message_id: origin})
    await store.close()
    await store.open()
    assert await store.get_message(first.message_id) == first
    assert await store.message_origins([first.message_id]) == {first.message_id: origin}
