"""Change entries and system messages in the fan-out and the inbox: who receives them, and that
they never raise a badge, become the last message or unhide a removed conversation."""

from __future__ import annotations

from dataclasses import replace

from chat_events.store.models import ConversationState, InboxEntry
from chat_events.streams.inbox_logic import fold_conversation
from chat_events.streams.recipients import may_post, recipients_of

ROW = ConversationState(
    user_id="bob",
    conversation_id="g1",
    last_message_id="m5",
    last_seq=5,
    last_user_seq=40,
    last_activity_ms=1000,
    read_seq=3,
    unread=2,
    hidden=True,
    version=7,
)


def _entry(seq: int, *, counted: bool, sender: str = "alice") -> InboxEntry:
    return InboxEntry(
        user_id="bob",
        user_seq=41,
        message_id=f"c{seq}",
        conversation_id="g1",
        conversation_seq=seq,
        sender_id=sender,
        created_at_ms=2000,
        counted=counted,
    )


def test_a_change_entry_moves_the_seqs_only() -> None:
    after = fold_conversation(ROW, _entry(6, counted=False), version=9)
    assert (after.last_seq, after.last_user_seq, after.version) == (6, 41, 9)
    assert (after.unread, after.last_message_id, after.last_activity_ms, after.hidden) == (2, "m5", 1000, True)
    counted = fold_conversation(ROW, _entry(6, counted=True), version=9)
    assert (counted.unread, counted.last_message_id, counted.hidden) == (3, "c6", False)


def test_a_first_entry_that_does_not_count_creates_a_read_row() -> None:
    row = fold_conversation(None, _entry(1, counted=False), version=3)
    assert (row.last_seq, row.unread, row.read_seq, row.version) == (1, 0, 0, 3)


def test_delete_for_me_reaches_only_its_actor_and_system_messages_ignore_blocks() -> None:
    common = {"target_type": "group", "target_id": "g1", "group_members": ["alice", "bob", "carol"]}
    assert recipients_of(sender_id="bob", blockers_of_sender=["carol"], kind="delete_for_me", **common) == ("bob",)
    assert recipients_of(sender_id="bob", blockers_of_sender=["carol"], kind="system", **common) == (
        "bob",
        "alice",
        "carol",
    )
    assert recipients_of(sender_id="bob", blockers_of_sender=["carol"], kind="edit", **common) == ("bob", "alice")
    removed = recipients_of(sender_id="alice", blockers_of_sender=[], kind="system", named=["dave"], **common)
    assert removed == ("alice", "bob", "carol", "dave")  # the member just removed is told
    assert "dave" not in recipients_of(sender_id="alice", blockers_of_sender=[], named=["dave"], **common)


def test_a_system_message_and_a_hide_need_no_membership() -> None:
    members = frozenset({"alice"})
    assert not may_post("bob", target_type="group", group_members=members)
    assert may_post("bob", target_type="group", group_members=members, kind="system")
    assert may_post("bob", target_type="group", group_members=members, kind="delete_for_me")
    assert not may_post("bob", target_type="group", group_members=members, kind="reaction_add")


def test_an_uncounted_entry_keeps_a_newer_last_seq() -> None:
    after = fold_conversation(replace(ROW, last_seq=9), _entry(6, counted=False), version=9)
    assert after.last_seq == 9
