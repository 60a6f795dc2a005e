"""The conversation list as a client pages it (bilibili GetSessions / NewSessions): pure
functions over a user's stored rows.

* **The list**: hidden (removed) conversations left out; pinned first, then the latest activity
  first, then by id; paged by an opaque cursor (the sort key of the last row given), so a page
  never repeats or skips a row that did not move meanwhile.
* **What changed since version V**: every row with ``version > V``, hidden ones included (the
  client drops them), oldest change first, paged by a cursor of ``(version, id)``.
* **Unread**: per conversation, and the total without muted conversations (as messengers
  badge the app icon), and the total of groups.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from chat_events.events.conversations import DIRECT_PREFIX
from chat_events.store.models import ConversationState

SortKey = tuple[int, int, str]


@dataclass(frozen=True, slots=True)
class ListPage:
    rows: tuple[ConversationState, ...]
    has_more: bool
    next_cursor: str | None


class BadCursor(ValueError):
    """A cursor this module did not make."""


def list_key(row: ConversationState) -> SortKey:
    return (0 if row.pinned else 1, -row.last_activity_ms, row.conversation_id)


def changes_key(row: ConversationState) -> SortKey:
    return (row.version, 0, row.conversation_id)


def encode_cursor(kind: str, key: SortKey) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([kind, *key])).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> SortKey:
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise BadCursor("not a cursor of this list") from None
    if not (isinstance(raw, list) and len(raw) == 4 and raw[0] == kind):
        raise BadCursor("not a cursor of this list")
    a, b, c = raw[1:]
    if not (isinstance(a, int) and isinstance(b, int) and isinstance(c, str)):
        raise BadCursor("not a cursor of this list")
    return (a, b, c)


def list_page(rows: Sequence[ConversationState], *, limit: int, cursor: str | None = None) -> ListPage:
    """One page of the list (see the module docstring); raises :class:`BadCursor`."""
    visible = sorted((r for r in rows if not r.hidden), key=list_key)
    return _page(visible, list_key, "list", limit, cursor)


def changes_page(
    rows: Sequence[ConversationState], *, since_version: int, limit: int, cursor: str | None = None
) -> ListPage:
    """One page of the rows changed after ``since_version``; raises :class:`BadCursor`."""
    changed = sorted((r for r in rows if r.version > since_version), key=changes_key)
    return _page(changed, changes_key, "changes", limit, cursor)


def _page(ordered: list[ConversationState], key: object, kind: str, limit: int, cursor: str | None) -> ListPage:
    assert callable(key)
    if cursor is not None:
        after = decode_cursor(kind, cursor)
        ordered = [r for r in ordered if key(r) > after]
    items = tuple(ordered[:limit])
    has_more = len(ordered) > limit
    next_cursor = encode_cursor(kind, key(items[-1])) if has_more and items else None
    return ListPage(items, has_more, next_cursor)


def list_version(rows: Sequence[ConversationState]) -> int:
    """The highest version of a user's rows: what to ask "changed since" with next."""
    return max((r.version for r in rows), default=0)


@dataclass(frozen=True, slots=True)
class UnreadCounts:
    total: int
    """Unread messages in conversations that are not muted (the app badge)."""
    groups: int
    """Unread messages in groups that are not muted (bilibili ``MyGroupUnread``)."""
    by_conversation: dict[str, int]
    """Every conversation with unread messages, muted ones included."""


def unread_counts(rows: Sequence[ConversationState]) -> UnreadCounts:
    counted = [r for r in rows if r.unread > 0]
    total = sum(r.unread for r in counted if not r.muted)
    groups = sum(r.unread for r in counted if not r.muted and not r.conversation_id.startswith(DIRECT_PREFIX))
    return UnreadCounts(total, groups, {r.conversation_id: r.unread for r in counted})
