"""``sync`` and room catch-up: pages read from the store, with an explicit answer for gaps.

A page is never silently partial: per-user seqs are dense, so the page after ``seq`` must start
at ``seq + 1`` and have no holes. Where the store cannot produce a seq (lost data, a user seq
the client claims that the server never assigned), the answer is ``NOT_RECOVERABLE`` with the
missing range and where to resume; a hole after some good entries ends the page early (with
``has_more``), so the client gets everything before it and hits the gap on its next call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chat_events.api.block_rules import visible_views
from chat_events.api.message_render import render
from chat_events.api.protocol import Code, ProtocolError
from chat_events.api.views import message_view
from chat_events.events.types import ChatMessage
from chat_events.store.models import InboxEntry
from chat_events.store.port import MessageStore


@dataclass(frozen=True, slots=True)
class Gap:
    from_seq: int
    to_seq: int
    resume_seq: int


def contiguous_prefix(after_seq: int, seqs: list[int]) -> tuple[int, Gap | None]:
    """How many of ``seqs`` (ascending) follow ``after_seq`` without a hole, and the gap at
    the very start if there is one (a hole later only shortens the page)."""
    expected = after_seq + 1
    for index, seq in enumerate(seqs):
        if seq != expected:
            if index == 0:
                return 0, Gap(expected, seq - 1, seq - 1)
            return index, None
        expected += 1
    return len(seqs), None


async def sync_page(
    store: MessageStore, user_id: str, after_seq: int, limit: int, *, frame_type: str, request_id: Any
) -> dict[str, Any]:
    page = await store.inbox_after(user_id, after_seq, limit)
    entries: list[InboxEntry] = list(page.items)
    count, gap = contiguous_prefix(after_seq, [e.user_seq for e in entries])
    if gap is None and not entries:
        latest = (await store.max_user_seqs([user_id])).get(user_id, 0)
        if latest < after_seq:  # the client is ahead of what the server ever assigned
            gap = Gap(latest + 1, after_seq, latest)
    if gap is not None:
        raise _not_recoverable(gap, frame_type, request_id)
    has_more = page.has_more or count < len(entries)
    entries = entries[:count]
    messages = await store.find_messages(e.message_id for e in entries)
    found: list[tuple[InboxEntry, ChatMessage]] = []
    for entry in entries:
        message = messages.get(entry.message_id)
        if message is None:  # the inbox names a message the store lost
            if not found:
                raise _not_recoverable(Gap(entry.user_seq, entry.user_seq, entry.user_seq), frame_type, request_id)
            has_more = True
            break
        found.append((entry, message))
    views = await render(store, user_id, [message for _, message in found])
    items = [{"user_seq": entry.user_seq, "message": view} for (entry, _), view in zip(found, views, strict=True)]
    last_seq = items[-1]["user_seq"] if items else after_seq
    return {"messages": items, "has_more": has_more, "last_seq": last_seq}


async def room_page(
    store: MessageStore,
    room_id: str,
    after_seq: int,
    limit: int,
    *,
    blocks: Mapping[str, int] | None = None,
    reader_id: str | None = None,
) -> dict[str, Any]:
    """A read-fan-out room's messages after a conversation seq (gaps are the client's to see:
    conversation seqs are dense too, but a room has no per-user inbox to vouch for them).
    ``blocks``: the reader's blocks; their messages since the block are left out, ``last_seq``
    still counts them."""
    page = await store.conversation_messages(room_id, after_seq=after_seq, limit=limit)
    items = await render(store, reader_id, page.items) if reader_id else [message_view(m) for m in page.items]
    last_seq = items[-1]["seq"] if items else after_seq
    shown = visible_views(items, blocks) if blocks else items
    return {"room_id": room_id, "messages": shown, "has_more": page.has_more, "last_seq": last_seq}


def _not_recoverable(gap: Gap, frame_type: str, request_id: Any) -> ProtocolError:
    return ProtocolError(
        Code.NOT_RECOVERABLE,
        f"seqs {gap.from_seq}..{gap.to_seq} cannot be recovered; resume after {gap.resume_seq}",
        data={"from_seq": gap.from_seq, "to_seq": gap.to_seq, "resume_seq": gap.resume_seq},
        frame_type=frame_type,
        request_id=request_id,
    )
