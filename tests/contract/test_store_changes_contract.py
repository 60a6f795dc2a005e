"""The store contract for changes to sent messages (issue 16): the v7 fields of a stored
message, updates of its changeable state, reactions, delete for me, and inbox entries that do
not count as unread. Runs on every adapter (``conftest.py``) and on the Cassandra stand-in
(``tests/unit/test_cassandra_changes_store.py``)."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from chat_events.events.types import ChatMessage
from chat_events.store.models import ConversationState, Reaction
from chat_events.store.port import MessageStore
from chat_events.streams.inbox_logic import fold_conversation
from tests.contract.test_store_contract import CONV, entry, message


def change_entry(seq: int, of: ChatMessage, *, kind: str = "edit") -> ChatMessage:
    """A change entry of ``of``: a message of its own, every v7 field set."""
    return replace(
        message(seq, client_msg_id=f"change-{seq}"),
        kind=kind,
        relates_to=of.message_id,
        reply_to=of.message_id,
        edited_at_ms=1_700_000_000_500 + seq,
        changed_seq=seq,
        mentions=(),
    )


async def test_the_v7_fields_of_a_message_are_stored_and_read_everywhere(store: MessageStore) -> None:
    first = message(1)
    change = change_entry(2, first)
    system = replace(message(3), kind="system", mentions=())
    await store.save_messages([first, change, system])
    assert await store.get_message(change.message_id) == change
    assert await store.find_messages([first.message_id, change.message_id, system.message_id]) == {
        first.message_id: first,
        change.message_id: change,
        system.message_id: system,
    }
    assert await store.find_client_messages([("alice", "change-2")]) == {("alice", "change-2"): change}
    assert (await store.conversation_messages(CONV, after_seq=0)).items == (first, change, system)
    assert (await store.conversation_messages(CONV, before_seq=4)).items == (system, change, first)
    assert (await store.conversation_range(CONV, 2, 3)).items == (change, system)
    assert (first.kind, first.relates_to, first.reply_to, first.edited_at_ms, first.changed_seq) == (
        "message",
        None,
        None,
        0,
        0,
    )


async def test_update_messages_overwrites_only_the_changeable_state(store: MessageStore) -> None:
    first, second = message(1, client_msg_id="n-1"), message(2)
    origin = str(uuid.uuid4())
    await store.save_messages([first, second], {first.message_id: origin})
    edited = replace(
        first, payload="edited ✎", mentions=("carol",), status="edited", edited_at_ms=1_700_000_009_000, changed_seq=3
    )
    recalled = replace(second, payload="", mentions=(), status="recalled", changed_seq=4)
    await store.update_messages([edited, recalled])
    await store.update_messages([edited, recalled])  # a replay: the same state
    assert await store.find_messages([first.message_id, second.message_id]) == {
        first.message_id: edited,
        second.message_id: recalled,
    }
    assert (await store.conversation_messages(CONV, after_seq=0)).items == (edited, recalled)
    assert await store.find_client_messages([("alice", "n-1")]) == {("alice", "n-1"): edited}
    assert await store.message_origins([first.message_id]) == {first.message_id: origin}
    # only payload, mentions, status, edited_at_ms and changed_seq change: the rest of the row stays
    moved = replace(edited, sender_id="mallory", sent_at_ms=1, kind="system", reply_to=second.message_id)
    await store.update_messages([moved])
    assert await store.get_message(first.message_id) == edited
    await store.update_messages([])
    assert await store.max_conversation_seqs([CONV]) == {CONV: 2}


async def test_set_message_status_still_works_beside_updates(store: MessageStore) -> None:
    first = message(1)
    await store.save_messages([first])
    await store.update_messages([replace(first, payload="v2", status="edited", edited_at_ms=5, changed_seq=2)])
    deleted = await store.set_message_status(first.message_id, "deleted")
    assert deleted == replace(first, payload="v2", status="deleted", edited_at_ms=5, changed_seq=2)
    assert await store.get_message(first.message_id) == deleted


async def test_reactions_last_writer_by_time_and_replays_change_nothing(store: MessageStore) -> None:
    m1, m2 = str(uuid.uuid4()), str(uuid.uuid4())

    def r(user: str, emoji: str, at_ms: int, *, message_id: str = m1, active: bool = True) -> Reaction:
        return Reaction(message_id=message_id, user_id=user, emoji=emoji, active=active, at_ms=at_ms)

    await store.save_reactions([r("bob", "👍", 20), r("alice", "👍", 10), r("carol", "❤️", 30)])
    await store.save_reactions([r("bob", "👍", 20), r("alice", "👍", 10)])  # a replay
    await store.save_reactions([r("dave", "👍", 40, message_id=m2)])
    assert await store.reactions_of([m1, m2, "unknown"]) == {
        m1: {"👍": ("alice", "bob"), "❤️": ("carol",)},
        m2: {"👍": ("dave",)},
    }
    await store.save_reactions([r("carol", "❤️", 50, active=False)])  # removed
    await store.save_reactions([r("bob", "👍", 15, active=False)])  # older than bob's reaction: ignored
    assert await store.reactions_of([m1]) == {m1: {"👍": ("alice", "bob")}}
    # several of one key in one call: applied in order, the newest stands
    await store.save_reactions([r("alice", "👍", 60, active=False), r("alice", "👍", 55), r("erin", "👍", 70)])
    assert await store.reactions_of([m1]) == {m1: {"👍": ("bob", "erin")}}
    await store.save_reactions([r("dave", "👍", 80, message_id=m2, active=False)])
    assert await store.reactions_of([m2]) == {}  # no active reaction left: absent
    await store.save_reactions([r("carol", "❤️", 90)])  # reacted again: a new time, at the end
    assert await store.reactions_of([m1]) == {m1: {"👍": ("bob", "erin"), "❤️": ("carol",)}}
    await store.save_reactions([])
    assert await store.reactions_of([]) == {}


async def test_hidden_messages_per_user_and_hiding_again_changes_nothing(store: MessageStore) -> None:
    m1, m2, m3 = (str(uuid.uuid4()) for _ in range(3))
    await store.hide_messages("bob", [m1, m2], at_ms=100)
    await store.hide_messages("bob", [m1], at_ms=200)  # again
    await store.hide_messages("carol", [m3], at_ms=100)
    await store.hide_messages("bob", [], at_ms=300)
    assert await store.hidden_messages("bob", [m1, m2, m3]) == frozenset({m1, m2})
    assert await store.hidden_messages("carol", [m1, m2, m3]) == frozenset({m3})
    assert await store.hidden_messages("alice", [m1, m2, m3]) == frozenset()
    assert await store.hidden_messages("bob", []) == frozenset()


async def test_entries_not_counted_are_stored_read_back_and_never_unread(store: MessageStore) -> None:
    """``counted=False`` (a change entry, a system message): in the inbox like any entry, not
    in ``unread`` / ``unread_mentions`` when ``mark_read`` recounts."""
    m1, m2, m3, m4 = message(1), change_entry(2, message(9)), message(3), replace(message(4), kind="system")
    await store.save_messages([m1, m2, m3, m4])
    entries = [
        entry("bob", 1, m1),
        replace(entry("bob", 2, m2), counted=False, mentioned=True),
        replace(entry("bob", 3, m3), mentioned=True),
        replace(entry("bob", 4, m4), counted=False),
    ]
    state: ConversationState | None = None
    for e in entries:
        state = fold_conversation(state, e)
    assert state is not None
    await store.save_inbox(entries, [state])
    await store.save_inbox(entries, [state])  # a replay
    assert (await store.inbox_after("bob", 0)).items == tuple(entries)
    found = await store.find_inbox_entries([("bob", e.message_id) for e in entries])
    assert [found[("bob", e.message_id)].counted for e in entries] == [True, False, True, False]
    read = await store.mark_read("bob", CONV, 0)
    assert read is not None and (read.unread, read.unread_mentions) == (2, 1)
    read = await store.mark_read("bob", CONV, 1)
    assert read is not None and (read.unread, read.unread_mentions) == (1, 1)
    read = await store.mark_read("bob", CONV, 3)
    assert read is not None and (read.unread, read.unread_mentions) == (0, 0)


async def test_an_update_of_a_message_not_stored_is_ignored_by_the_embedded_store(store: MessageStore) -> None:
    """The embedded store matches no row; the Cassandra adapter is given stored messages only
    (its caller guarantees it: ``chat_events/store/cassandra_changes.py``)."""
    from chat_events.store.embedded import EmbeddedStore

    if not isinstance(store, EmbeddedStore):
        pytest.skip("the Cassandra adapter's caller passes stored messages only")
    stored, ghost = message(1), message(2)
    await store.save_messages([stored])
    await store.update_messages([replace(ghost, payload="x", status="edited"), replace(stored, payload="y")])
    assert await store.get_message(ghost.message_id) is None
    assert (await store.conversation_messages(CONV, after_seq=0)).items == (replace(stored, payload="y"),)
    assert await store.max_conversation_seqs([CONV]) == {CONV: 1}
