"""Paging the conversation list and what changed since a version; unread totals (pure)."""

from __future__ import annotations

import pytest

from chat_events.api.conversation_list import (
    BadCursor,
    changes_page,
    decode_cursor,
    list_page,
    list_version,
    unread_counts,
)
from chat_events.store.models import ConversationState


def row(conversation_id: str, activity: int, **flags: object) -> ConversationState:
    return ConversationState(
        user_id="bob",
        conversation_id=conversation_id,
        last_message_id="m",
        last_seq=1,
        last_user_seq=1,
        last_activity_ms=activity,
        **flags,  # type: ignore[arg-type]
    )


ROWS = [row(f"c{i:02d}", activity=i, version=i) for i in range(10)]


def test_pinned_first_then_latest_activity_and_removed_ones_left_out() -> None:
    rows = [*ROWS[:8], row("c08", 8, pinned=True, version=8), row("c09", 9, hidden=True, version=9)]
    page = list_page(rows, limit=20)
    assert [r.conversation_id for r in page.rows] == ["c08", "c07", "c06", "c05", "c04", "c03", "c02", "c01", "c00"]
    assert not page.has_more and page.next_cursor is None


def test_the_cursor_pages_without_repeats_or_gaps() -> None:
    seen, cursor = [], None
    while True:
        page = list_page(ROWS, limit=3, cursor=cursor)
        seen += [r.conversation_id for r in page.rows]
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert seen == [f"c{i:02d}" for i in reversed(range(10))]


def test_changes_since_a_version_include_removed_rows_oldest_first() -> None:
    rows = [*ROWS[:9], row("c09", 9, hidden=True, version=9)]
    page = changes_page(rows, since_version=6, limit=2)
    assert [r.conversation_id for r in page.rows] == ["c07", "c08"] and page.has_more
    rest = changes_page(rows, since_version=6, limit=2, cursor=page.next_cursor)
    assert [r.conversation_id for r in rest.rows] == ["c09"] and not rest.has_more
    assert list_version(rows) == 9 and list_version([]) == 0


@pytest.mark.parametrize("cursor", ["nope", "", "W10", list_page(ROWS, limit=1).next_cursor])
def test_a_cursor_of_another_kind_or_made_up_is_refused(cursor: str | None) -> None:
    assert cursor is not None
    with pytest.raises(BadCursor):
        changes_page(ROWS, since_version=0, limit=5, cursor=cursor)
    if cursor != list_page(ROWS, limit=1).next_cursor:
        with pytest.raises(BadCursor):
            decode_cursor("list", cursor)


def test_unread_totals_leave_muted_conversations_out() -> None:
    rows = [
        row("dm:a:bob", 1, unread=2),
        row("dm:bob:c", 1, unread=5, muted=True),
        row("team", 1, unread=3),
        row("quiet", 1, unread=4, muted=True),
        row("read", 1),
    ]
    counts = unread_counts(rows)
    assert (counts.total, counts.groups) == (5, 3)
    assert counts.by_conversation == {"dm:a:bob": 2, "dm:bob:c": 5, "team": 3, "quiet": 4}
