"""The rules of changing a sent message (chat_events/events/change_rules.py): who may, until when,
and what the change entry and the changed message become."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chat_events.events.change_rules import (
    ChangeWindows,
    announced_entry,
    change_entry,
    change_refusal,
    changed_target,
    entry_kind,
    group_administrators,
)
from chat_events.events.message_events import MessageDeleted, MessageEdited, MessageReacted, MessageRecalled
from chat_events.events.types import ChatMessage
from chat_events.store.models import Group

WINDOWS = ChangeWindows(edit_ms=60_000, recall_ms=10_000)
SENT = 1_000_000
MESSAGE = ChatMessage(
    message_id="00000000-0000-4000-8000-000000000001",
    conversation_id="dm:alice:bob",
    seq=3,
    sender_id="alice",
    target_type="user",
    target_id="bob",
    message_type="text",
    payload="hi",
    sent_at_ms=SENT,
)
GROUP_MESSAGE = replace(MESSAGE, conversation_id="g1", target_type="group", target_id="g1")
CHANGE = "00000000-0000-4000-8000-0000000000c1"


def edit(actor: str = "alice", conversation: str = "dm:alice:bob") -> MessageEdited:
    return MessageEdited(
        change_id=CHANGE,
        actor_id=actor,
        conversation_id=conversation,
        message_id=MESSAGE.message_id,
        payload="hello",
        client_msg_id="e1",
    )


def recall(actor: str = "alice") -> MessageRecalled:
    return MessageRecalled(
        change_id=CHANGE,
        actor_id=actor,
        conversation_id="dm:alice:bob",
        message_id=MESSAGE.message_id,
        client_msg_id="r",
    )


def delete(actor: str, scope: str, conversation: str = "dm:alice:bob") -> MessageDeleted:
    return MessageDeleted(
        change_id=CHANGE,
        actor_id=actor,
        conversation_id=conversation,
        message_id=MESSAGE.message_id,
        scope=scope,
        client_msg_id="d",
    )


def react(actor: str = "bob", added: bool = True) -> MessageReacted:
    return MessageReacted(
        change_id=CHANGE,
        actor_id=actor,
        conversation_id="dm:alice:bob",
        message_id=MESSAGE.message_id,
        emoji="\U0001f44d",
        added=added,
        client_msg_id="x",
    )


def refusal_of(change, target=MESSAGE, *, at_ms=SENT + 1000, admin=False):  # type: ignore[no-untyped-def]
    found = change_refusal(change, target, at_ms=at_ms, windows=WINDOWS, admin=admin)
    return None if found is None else found.code


def test_the_sender_edits_and_recalls_within_the_windows() -> None:
    assert refusal_of(edit()) is None
    assert refusal_of(recall()) is None
    assert refusal_of(edit(), at_ms=SENT + 60_000) is None
    assert refusal_of(edit(), at_ms=SENT + 60_001) == "too_late"
    assert refusal_of(recall(), at_ms=SENT + 10_001) == "too_late"


def test_only_the_sender_edits_or_recalls() -> None:
    assert refusal_of(edit("bob")) == "forbidden"
    assert refusal_of(recall("bob")) == "forbidden"


def test_an_unknown_message_another_conversation_or_an_outsider_is_not_found() -> None:
    assert refusal_of(edit(), target=None) == "not_found"
    assert refusal_of(edit(conversation="dm:alice:carol")) == "not_found"
    assert refusal_of(delete("carol", "me")) == "not_found"  # not one of the pair


def test_delete_for_everyone_is_the_senders_or_a_group_admins() -> None:
    assert refusal_of(delete("alice", "everyone")) is None
    assert refusal_of(delete("bob", "everyone")) == "forbidden"
    assert refusal_of(delete("bob", "everyone", "g1"), target=GROUP_MESSAGE) == "forbidden"
    assert refusal_of(delete("bob", "everyone", "g1"), target=GROUP_MESSAGE, admin=True) is None
    assert refusal_of(delete("bob", "me")) is None  # anyone hides what they see, any time
    assert refusal_of(delete("bob", "me"), at_ms=SENT + 10**9) is None


def test_a_recalled_message_takes_no_further_change_but_can_be_hidden() -> None:
    recalled = replace(MESSAGE, status="recalled", payload="")
    assert refusal_of(edit(), target=recalled) == "invalid"
    assert refusal_of(react(), target=recalled) == "invalid"
    assert refusal_of(delete("alice", "everyone"), target=recalled) == "invalid"
    assert refusal_of(delete("bob", "me"), target=recalled) is None


def test_only_text_messages_are_edited_and_change_entries_are_not_changed() -> None:
    assert refusal_of(edit(), target=replace(MESSAGE, message_type="image", payload="{}")) == "invalid"
    assert refusal_of(react(), target=replace(MESSAGE, kind="reaction_add", relates_to=CHANGE)) == "invalid"


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        (edit(), "edit"),
        (recall(), "recall"),
        (delete("alice", "everyone"), "delete"),
        (delete("bob", "me"), "delete_for_me"),
        (react(added=True), "reaction_add"),
        (react(added=False), "reaction_remove"),
    ],
)
def test_each_change_is_an_entry_of_the_conversation(change, kind) -> None:  # type: ignore[no-untyped-def]
    assert entry_kind(change) == kind
    entry = change_entry(change, MESSAGE, seq=9, at_ms=SENT + 5, stored_at_ms=SENT + 6)
    assert (entry.message_id, entry.seq, entry.kind, entry.relates_to) == (CHANGE, 9, kind, MESSAGE.message_id)
    assert entry.conversation_id == MESSAGE.conversation_id
    assert entry.sender_id == change.actor_id
    assert entry.target_id == ("bob" if change.actor_id == "alice" else "alice")  # the other party
    assert entry.payload == ("\U0001f44d" if kind.startswith("reaction") else "")  # an edit's text lives in the message


def test_an_edit_rewrites_the_message_and_its_entry_carries_the_text_while_it_is_the_latest() -> None:
    after = changed_target(edit(), MESSAGE, seq=9, at_ms=SENT + 5)
    assert after is not None
    assert (after.payload, after.status, after.edited_at_ms, after.changed_seq) == ("hello", "edited", SENT + 5, 9)
    assert (after.seq, after.sender_id, after.sent_at_ms) == (MESSAGE.seq, "alice", SENT)
    entry = change_entry(edit(), MESSAGE, seq=9, at_ms=SENT + 5, stored_at_ms=SENT + 6)
    assert announced_entry(entry, after).payload == "hello"
    assert announced_entry(entry, replace(after, changed_seq=12)).payload == ""  # a later change replaced it


def test_recall_and_delete_for_everyone_empty_the_message() -> None:
    recalled = changed_target(recall(), replace(MESSAGE, mentions=("bob",)), seq=9, at_ms=SENT)
    deleted = changed_target(delete("alice", "everyone"), MESSAGE, seq=10, at_ms=SENT)
    assert recalled is not None and deleted is not None
    assert (recalled.payload, recalled.mentions, recalled.status, recalled.changed_seq) == ("", (), "recalled", 9)
    assert (deleted.payload, deleted.status) == ("", "deleted")
    assert changed_target(delete("bob", "me"), MESSAGE, seq=9, at_ms=SENT) is None
    assert changed_target(react(), MESSAGE, seq=9, at_ms=SENT) is None


def test_the_owner_and_admins_administer_a_group() -> None:
    group = Group(group_id="g1", name="G", owner_id="alice", created_at_ms=0)
    assert group_administrators(group) >= {"alice"}
    assert group_administrators(None) == frozenset()
