"""The client's side of presence (issue 16, item 6): the users this device watches, their latest
known presence, and the ``presence`` pushes in arrival order (the oldest dropped past 1000
unread). ``ChatClient.subscribe_presence`` fills it from the answer, then pushes keep it up to
date; after a reconnect the client subscribes again (the answer refreshes every entry)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from chat_events.client.mailbox import Mailbox

PresenceStatus = Literal["online", "offline", "unknown"]


@dataclass(frozen=True, slots=True)
class Presence:
    user_id: str
    status: PresenceStatus
    """``unknown``: not someone this user talks to (or no such user, or a block either way)."""
    last_seen_ms: int | None
    """When the user's last session ended; None while online, hidden by them, or never seen."""

    @property
    def online(self) -> bool:
        return self.status == "online"

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Presence:
        last_seen = data.get("last_seen_ms")
        return cls(str(data["user_id"]), data["status"], last_seen if isinstance(last_seen, int) else None)


class PresenceFeed:
    def __init__(self) -> None:
        self.updates: Mailbox[Presence] = Mailbox(maxlen=1000)
        """Every ``presence`` push, in arrival order."""
        self.current: dict[str, Presence] = {}
        """The latest presence per watched user (from the subscribe answers and the pushes)."""
        self.watched: set[str] = set()
        """Whom this device subscribed to (subscribed again after a reconnect)."""

    def subscribed(self, user_ids: Iterable[str], answer: Iterable[dict[str, Any]]) -> dict[str, Presence]:
        """Record a ``presence_subscribe`` answer; returns it per user."""
        self.watched.update(user_ids)
        found = {p.user_id: p for p in map(Presence.from_data, answer)}
        self.current.update(found)
        return found

    def unsubscribed(self, user_ids: Iterable[str] | None) -> None:
        for user_id in list(self.watched) if user_ids is None else list(user_ids):
            self.watched.discard(user_id)
            self.current.pop(user_id, None)

    def accept(self, data: dict[str, Any]) -> None:
        """A ``presence`` push (one of a user no longer watched, arriving late, is dropped)."""
        presence = Presence.from_data(data)
        if presence.user_id not in self.watched:
            return
        self.current[presence.user_id] = presence
        self.updates.put(presence)

    async def next(self, timeout_s: float | None = None) -> Presence:
        """The next push (``TimeoutError`` after ``timeout_s``)."""
        return await self.updates.get(timeout_s)
