"""Presence as clients see it (issue 16, item 6): pure decisions, no IO.

Who may see whom (as WhatsApp: the people you talk to): a user sees the presence of

* themselves;
* their 1:1 peers: the other user of every direct conversation in their list (someone who wrote
  to them, or whom they wrote to; removing the row from the list does not end it);
* the members of the groups they are a member of now;

and never of a user who blocks them, nor of a user they block. Anyone else is answered as
``unknown`` (a user who does not exist gets the same answer: nothing tells the two apart), and
their changes are not pushed.

What is shown: ``online`` (with ``last_seen_ms`` null) while the user has a session, else
``offline`` with ``last_seen_ms`` the time their last session ended, or null when they hide
their last seen (the ``show_last_seen`` setting) or were never seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from chat_events.api.authz import direct_participants
from chat_events.events.types import UserPresenceChanged
from chat_events.events.validation import ID_PATTERN
from chat_events.store.presence_state import PresenceState

MAX_PRESENCE_IDS = 500
"""User ids one ``presence_subscribe`` frame or ``GET /v1/presence`` names at most."""
MAX_SUBSCRIPTIONS = 500
"""Users one socket watches at most (over all its ``presence_subscribe`` frames)."""
UNKNOWN = "unknown"


def user_ids_problem(user_ids: object, field: str = "user_ids") -> tuple[str, str] | None:
    """What is wrong with a list of user ids a client named, as ``(field, reason)`` for code 5,
    or None: 1 to :data:`MAX_PRESENCE_IDS` ids (duplicates count once)."""
    if not isinstance(user_ids, list):
        return field, "must be an array of user ids"
    if not user_ids:
        return field, "must name at least one user"
    for i, user_id in enumerate(user_ids):
        if not isinstance(user_id, str) or len(user_id) > 128 or not ID_PATTERN.fullmatch(user_id):
            return f"{field}[{i}]", "must be a user id (1-128 letters, digits, '.', '_', '@', '-')"
    if len(set(user_ids)) > MAX_PRESENCE_IDS:
        return field, f"at most {MAX_PRESENCE_IDS} user ids"
    return None


def subscription_problem(watching: int, adding: int, limit: int = MAX_SUBSCRIPTIONS) -> str | None:
    """Why a socket watching ``watching`` users may not add ``adding`` more, or None."""
    if watching + adding > limit:
        return f"a socket watches at most {limit} users ({watching} already)"
    return None


def direct_peers(user_id: str, conversation_ids: Iterable[str]) -> set[str]:
    """The other users of the 1:1 conversations among ``conversation_ids``."""
    peers: set[str] = set()
    for conversation_id in conversation_ids:
        pair = direct_participants(conversation_id)
        if pair is not None and user_id in pair:
            peers.add(pair[1] if pair[0] == user_id else pair[0])
    return peers


def group_ids(conversation_ids: Iterable[str]) -> list[str]:
    """The group conversations among ``conversation_ids``."""
    return [c for c in conversation_ids if direct_participants(c) is None]


def visible(
    viewer: str,
    candidates: Iterable[str],
    *,
    peers: Iterable[str],
    groups: Iterable[frozenset[str] | None],
    blocked_by_viewer: Iterable[str],
    blocking_viewer: Iterable[str],
) -> frozenset[str]:
    """Which ``candidates`` ``viewer`` may see (see the module's rules). ``groups``: the member
    sets of the viewer's groups (a group the viewer is not in counts for nothing)."""
    known = {viewer, *peers}
    for members in groups:
        if members is not None and viewer in members:
            known.update(members)
    hidden = set(blocked_by_viewer) | set(blocking_viewer)
    return frozenset(c for c in candidates if c in known and (c == viewer or c not in hidden))


def presence_view(user_id: str, state: PresenceState | None) -> dict[str, Any]:
    """One user's presence as answered to a viewer (``state`` None: the viewer may not see it)."""
    if state is None:
        return {"user_id": user_id, "status": UNKNOWN, "last_seen_ms": None}
    if state.online:
        return {"user_id": user_id, "status": "online", "last_seen_ms": None}
    return {
        "user_id": user_id,
        "status": "offline",
        "last_seen_ms": state.last_seen_ms if state.show_last_seen else None,
    }


def presence_views(
    user_ids: Sequence[str], states: Mapping[str, PresenceState], allowed: frozenset[str]
) -> list[dict[str, Any]]:
    """The answer for ``user_ids`` (each once, in the order asked)."""
    return [presence_view(u, states.get(u) if u in allowed else None) for u in dict.fromkeys(user_ids)]


def push_view(user_id: str, event: UserPresenceChanged) -> dict[str, Any]:
    """A ``presence`` push of a ``userPresenceChanged``: offline shows ``changed_at_ms`` (when
    the last session ended) as ``last_seen_ms`` unless hidden or unknown (0)."""
    if event.status == "online":
        return {"user_id": user_id, "status": "online", "last_seen_ms": None}
    shown = event.show_last_seen and event.changed_at_ms > 0
    return {"user_id": user_id, "status": "offline", "last_seen_ms": event.changed_at_ms if shown else None}


def push_excluded(blocked_by_user: Iterable[str], blocking_user: Iterable[str]) -> frozenset[str]:
    """Viewers not told of a user's change: those the user blocks and those who block the user."""
    return frozenset(blocked_by_user) | frozenset(blocking_user)
