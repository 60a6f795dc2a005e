"""The conversation-list decisions (pure): versions, reads, flags, receipt recipients, and the
inbox fold's part (a new message shows a removed conversation again)."""

from __future__ import annotations

from dataclasses import replace

from chat_events.events.conversation_events import ConversationFlagsSet
from chat_events.store.models import ConversationState, InboxEntry
from chat_events.streams.conversation_logic import (
    delivered_watermarks,
    flags_after,
    next_version,
    read_all_targets,
    read_changes,
    receipt_recipients,
)
from chat_events.streams.inbox_logic import fold_conversation


def row(**overrides: object) -> ConversationState:
    values: dict[str, object] = {
        "user_id": "bob",
        "conversation_id": "dm:alice:bob",
        "last_message_id": "m3",
        "last_seq": 3,
        "last_user_seq": 3,
        "last_activity_ms": 1,
        "read_seq": 1,
        "unread": 2,
        "version": 100,
    }
    values.update(overrides)
    return ConversationState(**values)  # type: ignore[arg-type]


def test_versions_rise_above_the_previous_even_with_a_clock_behind() -> None:
    assert next_version(1_000, 10) == 1_000
    assert next_version(1_000, 5_000) == 5_001  # a clock behind the previous owner's
    assert next_version(1_000, 1_000) == 1_001


def test_only_a_newer_read_changes_the_row() -> None:
    assert read_changes(row(read_seq=1), 2)
    assert not read_changes(row(read_seq=2), 2)  # a replay
    assert not read_changes(row(read_seq=3), 1)  # an older read after a newer one
    assert not read_changes(None, 5)  # nothing to read


def test_flags_change_only_what_differs() -> None:
    event = ConversationFlagsSet(conversation_id="dm:alice:bob", set_at_ms=1, pinned=True)
    new = flags_after(row(), event)
    assert new is not None and new.pinned and not new.muted
    assert flags_after(row(pinned=True), event) is None  # a replay
    hide = ConversationFlagsSet(conversation_id="dm:alice:bob", set_at_ms=1, hidden=True, muted=False, up_to_user_seq=3)
    new = flags_after(row(), hide)
    assert new is not None and new.hidden and not new.muted


def test_read_all_targets_only_rows_with_something_unread() -> None:
    rows = [row(conversation_id="g2"), row(conversation_id="g1", read_seq=3, unread=0), row(conversation_id="g0")]
    assert [(r.conversation_id, seq) for r, seq in read_all_targets(rows, 10, [])] == [("g0", 3), ("g2", 3)]


def test_read_all_leaves_what_came_after_it_unread_also_when_replayed() -> None:
    """A replayed "mark everything read" (the worker killed after the later messages were
    stored) must not read what arrived after the edge accepted it (a CI model test found it)."""

    def later(user_seq: int, conversation: str, seq: int) -> InboxEntry:
        return InboxEntry(
            user_id="bob",
            user_seq=user_seq,
            message_id=f"m{user_seq}",
            conversation_id=conversation,
            conversation_seq=seq,
            sender_id="alice",
            created_at_ms=0,
        )

    rows = [row(conversation_id="g1", last_seq=5, read_seq=1), row(conversation_id="g2", last_seq=9, read_seq=2)]
    entries = [later(11, "g2", 8), later(12, "g2", 9), later(9, "g1", 4)]  # g1's is before the bound
    assert [(r.conversation_id, seq) for r, seq in read_all_targets(rows, 10, entries)] == [("g1", 5), ("g2", 7)]
    assert read_all_targets([row(conversation_id="g2", last_seq=9, read_seq=7)], 10, entries) == []


def test_a_replayed_remove_does_not_hide_what_a_newer_message_showed() -> None:
    remove = ConversationFlagsSet(conversation_id="dm:alice:bob", set_at_ms=1, hidden=True, up_to_user_seq=3)
    hidden = flags_after(row(last_user_seq=3), remove)
    assert hidden is not None and hidden.hidden
    assert flags_after(row(last_user_seq=4), remove) is None  # a message past the remove: stays shown
    both = ConversationFlagsSet(conversation_id="dm:alice:bob", set_at_ms=1, hidden=True, pinned=True)
    new = flags_after(row(last_user_seq=4), both)
    assert new is not None and new.pinned and not new.hidden  # the other flags still apply


def test_receipts_go_to_the_peer_and_to_small_groups_only() -> None:
    assert receipt_recipients("dm:alice:bob", "bob", None, max_group=100) == ["alice"]
    assert receipt_recipients("dm:alice:bob", "alice", None, max_group=0) == ["bob"]
    members = frozenset({"alice", "bob", "carol"})
    assert receipt_recipients("team", "bob", members, max_group=3) == ["alice", "carol"]
    assert receipt_recipients("team", "bob", members, max_group=2) == []  # too large
    assert receipt_recipients("team", "mallory", members, max_group=100) == []  # not a member
    assert receipt_recipients("team", "bob", None, max_group=100) == []


def test_a_new_message_shows_a_removed_conversation_again_with_a_new_version() -> None:
    entry = InboxEntry(
        user_id="bob",
        user_seq=4,
        message_id="m4",
        conversation_id="dm:alice:bob",
        conversation_seq=4,
        sender_id="alice",
        created_at_ms=9,
    )
    folded = fold_conversation(row(hidden=True, pinned=True), entry, version=200)
    assert not folded.hidden and folded.pinned and folded.version == 200 and folded.unread == 3
    assert folded.unread_mentions == 0
    mentioned = fold_conversation(row(), replace(entry, mentioned=True), version=200)
    assert (mentioned.unread, mentioned.unread_mentions) == (3, 1)
    own = replace(entry, sender_id="bob", conversation_seq=5, mentioned=False)
    assert fold_conversation(mentioned, own, version=201).unread_mentions == 0  # caught up by writing
    assert fold_conversation(row(version=300), entry, version=200).version == 300  # never backwards


def test_newly_acked_entries_deliver_per_conversation_to_their_senders() -> None:
    def e(user_seq: int, conversation: str, seq: int, sender: str) -> InboxEntry:
        return InboxEntry(
            user_id="bob",
            user_seq=user_seq,
            message_id=f"m{user_seq}",
            conversation_id=conversation,
            conversation_seq=seq,
            sender_id=sender,
            created_at_ms=0,
        )

    entries = [e(5, "dm:alice:bob", 7, "alice"), e(6, "team", 3, "carol"), e(7, "team", 4, "dave")]
    entries += [e(8, "dm:alice:bob", 8, "bob"), e(9, "dm:bob:erin", 1, "bob")]  # bob's own: no receipt
    assert delivered_watermarks(entries, "bob") == {
        "dm:alice:bob": (7, ("alice",)),
        "team": (4, ("carol", "dave")),
    }
    assert delivered_watermarks([], "bob") == {}
