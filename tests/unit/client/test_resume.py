"""Resuming from the device's stored progress (issue 15, item 8) on the client side: the inbox
continues after it, and the sign-in and sync answers carry it."""

from __future__ import annotations

from typing import Any

from chat_events.client.inbox import Inbox
from chat_events.client.models import SignInInfo, SyncPage


def _msg(seq: int) -> dict[str, Any]:
    return {"message_id": f"m{seq}"}


def test_resuming_drops_what_was_delivered_before_and_releases_what_follows() -> None:
    inbox = Inbox(0)
    inbox.offer(5, _msg(5))  # pushes that arrived before the sign-in answer was taken in
    inbox.offer(8, _msg(8))
    inbox.offer(9, _msg(9))
    assert [d.user_seq for d in inbox.resume_at(7)] == [8, 9]
    assert inbox.last_seq == 9 and not inbox.needs_sync
    assert inbox.resume_at(3) == [] and inbox.last_seq == 9  # never backwards


def test_the_answers_carry_the_progress() -> None:
    base = {"user_id": "u", "session_id": "s", "heartbeat_s": 30, "max_frame_bytes": 65536, "last_user_seq": 9}
    assert SignInInfo.from_data({**base, "acked_seq": 7}).acked_seq == 7
    assert SignInInfo.from_data(base).acked_seq == 0  # an edge that does not say
    page = SyncPage.from_data({"messages": [], "has_more": False, "after_seq": 7}, None)
    assert (page.after_seq, page.last_seq) == (7, 7)
    older = SyncPage.from_data({"messages": [], "has_more": False}, 4)
    assert (older.after_seq, older.last_seq) == (4, 4)
