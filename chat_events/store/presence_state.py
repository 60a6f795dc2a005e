"""What the store knows of one user's presence (issue 16, item 6): whether they have a session
now, when their last session ended (their *last seen*), and whether they let others see it.
Read by the edge for ``presence_subscribe`` answers and ``GET /v1/presence``; written by the
sessions stage (:meth:`~chat_events.store.port.MessageStore.record_last_seen`,
:meth:`~chat_events.store.port.MessageStore.set_show_last_seen`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceState:
    user_id: str
    online: bool
    """At least one active session."""
    last_seen_ms: int | None
    """When the user's last session ended (the latest such time); None if none ever did.
    Stored whatever ``show_last_seen`` says: hiding it is decided where it is shown."""
    show_last_seen: bool = True
    """The user's setting (``True`` for a user who never set it)."""
