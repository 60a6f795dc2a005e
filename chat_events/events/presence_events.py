"""Presence settings (schema version 7). Plain dataclasses, re-exported by
:mod:`chat_events.events.types`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True, kw_only=True)
class PresenceSettingsSet:
    """The user ``userId`` chose whether others see their last seen time (WhatsApp's "last seen"
    privacy setting): hidden, presence pushes and queries say online / offline without it. On
    ``chat.user-events`` keyed by ``userId``, applied by the sessions stage (the owner of the
    user's presence)."""

    EVENT_NAME: ClassVar[str] = "presenceSettingsSet"
    NAMESPACE: ClassVar[str] = "chat.user"

    show_last_seen: bool
    set_at_ms: int
