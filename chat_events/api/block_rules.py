"""Blocks as the edge applies them (issue 16, item 5): pure decisions, no IO.

A block is stored per blocker with the time it took effect (``MessageStore.blocks_by``). The
fan-out stage already leaves the blocker out of the blocked user's deliveries; the edge adds
what the fan-out cannot see:

* a blocked user's direct (1:1) send is refused with code 18 ``BLOCKED`` before Kafka;
* typing from a blocked user is not relayed to the blocker;
* ``room_message`` pushes (read fan-out groups) skip subscribers who block the sender;
* history and room pages leave out the blocked user's messages sent at or after the block
  (those before it stay: they were delivered).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from chat_events.events.validation import ID_PATTERN

BLOCKED_MESSAGE = "this user does not accept your messages; nothing was sent"
"""The ``message`` of a refused direct send (code 18)."""


def block_target_problem(user_id: str, target_id: object) -> str | None:
    """What is wrong with blocking ``target_id`` (a reason for code 5), or None."""
    if not isinstance(target_id, str) or not ID_PATTERN.fullmatch(target_id) or len(target_id) > 128:
        return "must be a user id (1-128 letters, digits, '.', '_', '@', '-')"
    if target_id == user_id:
        return "you cannot block yourself"
    return None


def block_changes(current: Mapping[str, int], target_id: str, *, active: bool) -> bool:
    """Whether a block (``active``) or unblock of ``target_id`` changes anything: blocking again
    would move the block's time later (showing again what arrived between), so it is not sent."""
    return (target_id in current) != active


def direct_send_blocked(target_type: str, target_id: str, blockers_of_sender: Iterable[str]) -> bool:
    """A 1:1 send whose recipient blocks the sender (group sends still reach the other members)."""
    return target_type == "user" and target_id in set(blockers_of_sender)


def without_blockers(recipients: Iterable[str], blockers_of_sender: Iterable[str]) -> set[str]:
    """``recipients`` less those who block the sender (typing, room pushes)."""
    return set(recipients) - set(blockers_of_sender)


def hidden_by_block(sender_id: str, sent_at_ms: int, blocks: Mapping[str, int]) -> bool:
    """Whether the viewer, who blocks the users of ``blocks`` (id -> since_ms), does not see a
    message ``sender_id`` sent at ``sent_at_ms``: sent at or after the block took effect."""
    since = blocks.get(sender_id)
    return since is not None and sent_at_ms >= since


def visible_views(views: list[dict[str, Any]], blocks: Mapping[str, int]) -> list[dict[str, Any]]:
    """The message views (``api.views.message_view``) the viewer sees."""
    if not blocks:
        return views
    return [v for v in views if not hidden_by_block(str(v["sender_id"]), int(v["sent_at_ms"]), blocks)]


def hide_blocked(body: dict[str, Any], blocks: Mapping[str, int]) -> dict[str, Any]:
    """A history or room page body with the blocked users' messages left out. The page's own
    bounds stay those of the messages read (``has_more``, ``next_from_seq``, ``last_seq``) and
    ``page_end_seq`` names the last seq read, hidden or not: where the next page starts
    (``before_seq`` for a newest-first page, ``after_seq`` for an ascending one)."""
    views: list[dict[str, Any]] = body["messages"]
    shown = visible_views(views, blocks)
    return {**body, "messages": shown, "page_end_seq": int(views[-1]["seq"]) if views else None}


def blocks_view(blocks: Mapping[str, int]) -> list[dict[str, Any]]:
    """``GET /v1/blocks``: whom I block, newest first (ties by id)."""
    return [{"user_id": u, "since_ms": s} for u, s in sorted(blocks.items(), key=lambda b: (-b[1], b[0]))]
