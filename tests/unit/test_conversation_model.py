"""The reference model of the conversation list (tests/conversation_model.py) on its own: each
rule it states, checked on a small hand-made story."""

from __future__ import annotations

from tests.conversation_model import ConversationModel, Row, Unread, dm_id


def model() -> ConversationModel:
    return ConversationModel({dm_id("a", "b"): frozenset({"a", "b"}), "g": frozenset({"a", "b", "c"})})


def test_messages_from_others_are_unread_and_own_messages_mark_read() -> None:
    m, dm = model(), dm_id("a", "b")
    assert [m.send("a", dm), m.send("a", dm)] == [1, 2]
    assert m.row("b", dm) == Row(last_seq=2, unread=2)
    assert m.row("a", dm) == Row(last_seq=2, read_seq=2)
    m.send("b", dm)  # b's reply: b has read everything up to it
    assert m.row("b", dm) == Row(last_seq=3, read_seq=3)
    assert m.row("a", dm) == Row(last_seq=3, read_seq=2, unread=1)


def test_reads_never_go_back_and_need_a_row() -> None:
    m, dm = model(), dm_id("a", "b")
    m.read("b", dm, 0)
    assert m.row("b", dm) is None  # nothing to read yet
    for _ in range(3):
        m.send("a", dm)
    m.read("b", dm, 2)
    assert m.row("b", dm) == Row(last_seq=3, read_seq=2, unread=1)
    m.read("b", dm, 1)
    assert m.row("b", dm) == Row(last_seq=3, read_seq=2, unread=1)
    assert m.clamp_bounds(dm, 9, known_stored=1) == (1, 3)
    assert m.clamp_bounds(dm, 2, known_stored=3) == (2, 2)


def test_remove_hides_until_a_new_message_and_flags_stay() -> None:
    m = model()
    m.send("a", "g")
    m.set_flags("c", "g", hidden=True, pinned=True)
    m.set_flags("c", "g", pinned=None, muted=True)
    assert m.row("c", "g") == Row(last_seq=1, unread=1, pinned=True, muted=True, hidden=True)
    m.send("b", "g")
    assert m.row("c", "g") == Row(last_seq=2, unread=2, pinned=True, muted=True, hidden=False)
    m.set_flags("c", dm_id("a", "b"), pinned=True)  # not c's conversation: no row appears
    assert m.row("c", dm_id("a", "b")) is None


def test_totals_leave_muted_out_and_read_all_clears_them() -> None:
    m, dm = model(), dm_id("a", "b")
    m.send("a", dm)
    m.send("a", "g")
    m.send("c", "g")
    assert m.unread_of("b") == Unread(3, 2, {dm: 1, "g": 2})
    m.set_flags("b", "g", muted=True)
    assert m.unread_of("b") == Unread(1, 0, {dm: 1, "g": 2})
    m.read_all("b")
    assert m.unread_of("b") == Unread(0, 0, {})
    assert m.rows_of("b") == {dm: Row(1, 1, 0), "g": Row(2, 2, 0, muted=True)}
