"""What the terminal chat prints: pure decisions, no I/O (``chat_cmd`` feeds them and prints).

* **Order.** Messages of the conversation are printed in its ``seq`` order (the conversation
  seq, the same for every member), so both people see one order. Our own messages are printed
  when their delivery arrives, not when the send is acknowledged: the ack of ours can come
  before the delivery of an earlier message of theirs. A message that arrives after a later one
  was printed is not appended out of place: the view re-renders the conversation from it, in
  seq order, under a line that says so.
* **New elsewhere.** Messages of other conversations are counted as new only when someone
  else sent them; ours (from another device) are not news.
* **Sends.** A line is pending from the moment it is typed until the edge acknowledges it: a
  pending line is printed when it has to wait (disconnected, earlier sends in flight) or the
  ack is slow; a failed send is marked with the error code.
* **Connection.** One line when it is lost, one now and then while reconnecting, one when it
  is back, one when it ended for good.
"""

from __future__ import annotations

from bisect import insort
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chat_events.api.protocol import Code

if TYPE_CHECKING:
    from chat_events.client.status import ConnectionEvent

KEEP_MESSAGES = 200
"""Messages of the conversation kept for re-rendering (the oldest are dropped)."""
RECONNECT_REPORT_EVERY = 10
"""While reconnecting, a line for the first failed attempt and every this many after it."""


def format_message(message: dict[str, Any]) -> str:
    """``[HH:MM:SS] sender: text`` (local time of ``sent_at_ms``); other types show ``<type>``."""
    sent = message.get("sent_at_ms")
    when = datetime.fromtimestamp(sent / 1000).strftime("%H:%M:%S") if isinstance(sent, int) else "--:--:--"
    kind = message.get("message_type", "text")
    body = str(message.get("content", ""))
    if kind != "text":
        body = f"<{kind}> {body}"
    sender = message.get("sender_id", "?")
    change = _CHANGES.get(str(message.get("kind", "message")))
    if change is not None:  # a change entry (docs/protocol.md#changing-messages)
        return f"[{when}] * {sender} {change.format(body=body)}"
    if message.get("kind") == "system":
        return f"[{when}] * {body}"
    if message.get("status") in ("recalled", "deleted"):
        body = f"<message {message['status']}>"
    elif message.get("status") == "edited":
        body = f"{body} (edited)"
    return f"[{when}] {sender}: {body}"


_CHANGES = {
    "edit": "edited a message: {body}",
    "recall": "recalled a message",
    "delete": "deleted a message",
    "delete_for_me": "deleted a message for themselves",
    "reaction_add": "reacted {body}",
    "reaction_remove": "took back a reaction {body}",
}


def code_label(code: int | None) -> str:
    """``FORBIDDEN 8`` for a protocol code; ``connection lost`` for None (no answer at all)."""
    if code is None:
        return "connection lost"
    try:
        return f"{Code(code).name} {code}"
    except ValueError:
        return f"code {code}"


def connection_line(event: ConnectionEvent) -> str | None:
    """The status line for a change of the connection, or None (reconnect attempts in between)."""
    if event.state == "lost":
        return f"(connection lost: {event.detail}; reconnecting...)"
    if event.state == "reconnecting":
        if event.attempt == 1 or event.attempt % RECONNECT_REPORT_EVERY == 0:
            return f"(still reconnecting, attempt {event.attempt} failed: {event.detail})"
        return None
    if event.state == "reconnected":
        return f"(reconnected to edge {event.detail}; catching up)"
    return f"(connection ended: {event.detail})"


def new_elsewhere(user: str, conversation: str, messages: Iterable[dict[str, Any]]) -> list[str]:
    """``(N new messages in X)`` per other conversation, counting only others' messages."""
    counts: Counter[str] = Counter(
        str(m.get("conversation_id", ""))
        for m in messages
        if m.get("conversation_id") != conversation and m.get("sender_id") != user
    )
    return [f"({n} new message{'s' if n > 1 else ''} in {other})" for other, n in sorted(counts.items())]


def _seq_of(message: dict[str, Any]) -> int:
    seq = message.get("seq")
    return seq if isinstance(seq, int) else 0


@dataclass
class _Outgoing:
    text: str
    announced: bool = False
    """A pending line was printed for it."""


class ChatView:
    """The screen of one conversation, as lines to print. Every method returns the lines to
    print now (often none); nothing is printed twice."""

    def __init__(self, user: str, conversation: str) -> None:
        self.user = user
        self.conversation = conversation
        self._seqs: list[int] = []
        self._by_seq: dict[int, dict[str, Any]] = {}
        self._ids: set[str] = set()
        self._outbox: dict[str, _Outgoing] = {}
        self._awaiting: set[str] = set()
        """Message ids of our acknowledged sends whose delivery has not been printed yet."""
        self._ended = False

    # --- messages ----------------------------------------------------------------------------

    def message(self, message: dict[str, Any]) -> list[str]:
        """A delivered (or history) message of any conversation."""
        if message.get("conversation_id") != self.conversation:
            return new_elsewhere(self.user, self.conversation, [message])
        message_id = str(message.get("message_id", ""))
        if message_id in self._ids:
            return []
        self._ids.add(message_id)
        self._awaiting.discard(message_id)
        seq = message.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq in self._by_seq:
            return [format_message(message)]  # no usable seq: print as it comes
        late = bool(self._seqs) and seq < self._seqs[-1]
        insort(self._seqs, seq)
        self._by_seq[seq] = message
        lines = [format_message(message)]
        if late:
            start = self._seqs.index(seq)
            lines = [
                "(an earlier message arrived late; the conversation from it, in order:)",
                *(format_message(self._by_seq[s]) for s in self._seqs[start:]),
            ]
        if len(self._seqs) > KEEP_MESSAGES:
            del self._by_seq[self._seqs.pop(0)]
        return lines

    def history(self, messages: Iterable[dict[str, Any]]) -> list[str]:
        """Messages of this conversation shown at start, printed in seq order."""
        ordered = sorted(messages, key=_seq_of)
        return [line for m in ordered for line in self.message(m)]

    # --- sends -------------------------------------------------------------------------------

    def typed(self, key: str, text: str, *, connected: bool) -> list[str]:
        """A line to send (``key`` is its ``client_msg_id``); pending at once if it has to wait."""
        waiting = not connected or bool(self._outbox)
        self._outbox[key] = _Outgoing(text)
        return self.slow(key) if waiting else []

    def slow(self, key: str) -> list[str]:
        """The send is still unacknowledged: say so (once)."""
        item = self._outbox.get(key)
        if item is None or item.announced:
            return []
        item.announced = True
        return [f"... pending: {item.text}"]

    def acked(self, key: str, message_id: str) -> list[str]:
        """The edge has it; the message itself is printed when its delivery comes, in seq order."""
        self._outbox.pop(key, None)
        if message_id not in self._ids:
            self._awaiting.add(message_id)
        return []

    def failed(self, key: str, code: int | None, reason: str) -> list[str]:
        item = self._outbox.pop(key, None)
        text = item.text if item is not None else "?"
        return [f"! not sent [{code_label(code)}]: {text} ({reason})"]

    @property
    def outstanding(self) -> bool:
        """Sends not acknowledged yet, or acknowledged but not printed yet."""
        return bool(self._outbox or self._awaiting)

    def unsent(self) -> list[str]:
        """At exit: what was typed and never acknowledged."""
        lines = [f"! not sent (left before the edge acknowledged it): {item.text}" for item in self._outbox.values()]
        self._outbox.clear()
        return lines

    # --- connection --------------------------------------------------------------------------

    def connection(self, event: ConnectionEvent) -> list[str]:
        if event.state == "ended":
            return self.ended(event.detail)
        line = None if self._ended else connection_line(event)
        return [line] if line is not None else []

    def ended(self, reason: str) -> list[str]:
        """The session is over (an ``ended`` event, or ``receive`` raised): one line, once."""
        if self._ended:
            return []
        self._ended = True
        return [f"(connection ended: {reason})"]
