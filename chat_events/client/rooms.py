"""The subscribed read-fan-out room: its live ``room_message`` pushes, each conversation seq once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chat_events.client.mailbox import Mailbox
from chat_events.client.models import RoomMessage, RoomPage


class RoomFeed:
    def __init__(self, on_message: Callable[[RoomMessage], None] | None = None, maxlen: int = 10_000) -> None:
        self._on_message = on_message
        self.queue: Mailbox[RoomMessage] = Mailbox(maxlen=maxlen)
        self.room_id: str | None = None
        self.seq = 0
        """The highest conversation seq seen in the room (where a resubscribe starts)."""

    def subscribing(self, room_id: str | None, seq: int) -> None:
        """Called before asking: pushes that follow the answer are read before the caller resumes."""
        self.room_id, self.seq = room_id or None, seq if room_id else 0

    def subscribed(self, page: RoomPage) -> None:
        if self.room_id is not None:
            self.seq = max(self.seq, page.last_seq, *(_seq_of(m) for m in page.messages))

    def accept(self, message: RoomMessage) -> None:
        if message.room_id != self.room_id or message.seq <= self.seq:
            return  # another room (a late push after unsubscribing) or seen already
        self.seq = message.seq
        self.queue.put(message)
        if self._on_message is not None:
            self._on_message(message)


def _seq_of(message: dict[str, Any]) -> int:
    value = message.get("seq")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
