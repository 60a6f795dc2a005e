"""The terminal chat's presentation decisions (chat_events/cli/chat_view.py)."""

from __future__ import annotations

from typing import Any

from chat_events.api.protocol import Code
from chat_events.cli.chat_view import ChatView, code_label, connection_line, format_message, new_elsewhere
from chat_events.client import ConnectionEvent

CONVERSATION = "dm:alice:bob"


def msg(seq: int, sender: str = "bob", conversation: str = CONVERSATION, text: str | None = None) -> dict[str, Any]:
    return {
        "message_id": f"{conversation}/{seq}",
        "conversation_id": conversation,
        "seq": seq,
        "sender_id": sender,
        "content": text or f"m{seq}",
        "sent_at_ms": None,
    }


def line(seq: int, sender: str = "bob") -> str:
    return format_message(msg(seq, sender))


def test_messages_in_seq_order_are_printed_as_they_come_once_each() -> None:
    view = ChatView("alice", CONVERSATION)
    assert view.message(msg(1)) == [line(1)]
    assert view.message(msg(2, "alice")) == [line(2, "alice")]
    assert view.message(msg(2, "alice")) == []  # the same message again (another sync, another device)


def test_a_late_message_re_renders_the_conversation_from_its_place() -> None:
    view = ChatView("alice", CONVERSATION)
    view.message(msg(1))
    view.message(msg(3, "alice"))
    view.message(msg(4))
    out = view.message(msg(2))
    assert out[0].startswith("(an earlier message arrived late")
    assert out[1:] == [line(2), line(3, "alice"), line(4)]
    assert view.message(msg(5)) == [line(5)]


def test_history_is_printed_in_seq_order() -> None:
    view = ChatView("alice", CONVERSATION)
    assert view.history([msg(3), msg(1), msg(2, "alice")]) == [line(1), line(2, "alice"), line(3)]


def test_own_sends_are_printed_at_their_delivery_not_at_the_ack() -> None:
    """Alice's ack (seq 3) can come before bob's earlier message (seq 2): both must see 2 then 3."""
    view = ChatView("alice", CONVERSATION)
    view.message(msg(1))
    assert view.typed("k1", "m3", connected=True) == []
    assert view.acked("k1", msg(3, "alice")["message_id"]) == []
    assert view.outstanding  # acknowledged, not printed yet
    assert view.message(msg(2)) == [line(2)]
    assert view.message(msg(3, "alice")) == [line(3, "alice")]
    assert not view.outstanding


def test_only_others_messages_elsewhere_are_new() -> None:
    view = ChatView("alice", CONVERSATION)
    assert view.message(msg(1, "alice", "dm:alice:carol")) == []  # ours, from another device
    assert view.message(msg(2, "carol", "dm:alice:carol")) == ["(1 new message in dm:alice:carol)"]
    missed = [msg(1, "alice", "team"), msg(2, "dave", "team"), msg(3, "erin", "team"), msg(1, "bob")]
    assert new_elsewhere("alice", CONVERSATION, missed) == ["(2 new messages in team)"]
    assert new_elsewhere("alice", CONVERSATION, [msg(1, "alice", "team")]) == []


def test_a_send_is_pending_when_it_must_wait_or_is_slow_and_failed_with_its_code() -> None:
    view = ChatView("alice", CONVERSATION)
    assert view.typed("k1", "one", connected=True) == []
    assert view.typed("k2", "two", connected=True) == ["... pending: two"]  # behind k1
    assert view.slow("k1") == ["... pending: one"]
    assert view.slow("k1") == []  # said once
    assert view.failed("k2", Code.FORBIDDEN, "not a member") == ["! not sent [FORBIDDEN 8]: two (not a member)"]
    assert view.acked("k1", "m-1") == []
    assert view.typed("k3", "three", connected=False) == ["... pending: three"]
    assert view.unsent() == ["! not sent (left before the edge acknowledged it): three"]
    assert view.unsent() == []


def test_code_labels() -> None:
    assert code_label(Code.UNAVAILABLE) == "UNAVAILABLE 13"
    assert code_label(None) == "connection lost"
    assert code_label(99) == "code 99"


def test_connection_lines() -> None:
    assert (
        connection_line(ConnectionEvent("lost", "close code 1001"))
        == "(connection lost: close code 1001; reconnecting...)"
    )
    first = connection_line(ConnectionEvent("reconnecting", "refused", 1))
    assert first is not None and "attempt 1" in first and "refused" in first
    assert connection_line(ConnectionEvent("reconnecting", "refused", 2)) is None
    assert connection_line(ConnectionEvent("reconnecting", "refused", 10)) is not None
    assert connection_line(ConnectionEvent("reconnected", "edge-1")) == "(reconnected to edge edge-1; catching up)"


def test_the_end_of_the_session_is_said_once() -> None:
    view = ChatView("alice", CONVERSATION)
    assert view.connection(ConnectionEvent("ended", "kicked")) == ["(connection ended: kicked)"]
    assert view.ended("connection lost (close code 4007)") == []
    assert view.connection(ConnectionEvent("reconnected", "edge-2")) == []
