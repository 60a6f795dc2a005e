"""The client's side of the conversation list: the ``conversation`` pushes (a row of this
user's list after a read or a flag change, from any of the user's devices) and the ``receipt``
pushes (how far another member has read), each kept in arrival order (the oldest dropped past
1000 unread)."""

from __future__ import annotations

from typing import Any

from chat_events.client.mailbox import Mailbox


class ConversationFeed:
    def __init__(self) -> None:
        self.changes: Mailbox[dict[str, Any]] = Mailbox(maxlen=1000)
        self.receipts: Mailbox[dict[str, Any]] = Mailbox(maxlen=1000)
        self.rows: dict[str, dict[str, Any]] = {}
        """The latest row seen per conversation (the highest ``version``)."""

    def accept(self, frame_type: str, data: dict[str, Any]) -> None:
        if frame_type == "conversation":
            known = self.rows.get(data["conversation_id"])
            if known is None or known.get("version", 0) < data.get("version", 0):
                self.rows[data["conversation_id"]] = data
            self.changes.put(data)
        elif frame_type == "receipt":
            self.receipts.put(data)
