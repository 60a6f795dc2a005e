"""Presence for clients (issue 16, item 6), for the frames and the HTTP routes alike: who the
asking user may see (rules in :mod:`chat_events.api.presence_rules`, read from the store here),
their current presence, the ``presence_subscribe`` / ``presence_unsubscribe`` frames, and the
last-seen setting (``presenceSettingsSet`` to ``chat.user-events`` keyed by the user, applied by
the sessions stage)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from chat_events.api.connection import Connection
from chat_events.api.conversation_actions import ActionRefused
from chat_events.api.edge import EdgeNode
from chat_events.api.presence_frames import PresenceSubscribe, PresenceUnsubscribe
from chat_events.api.presence_rules import direct_peers, group_ids, presence_views, subscription_problem, visible
from chat_events.api.protocol import Code, Frame, ProtocolError, output_frame
from chat_events.errors import ChatEventsError
from chat_events.events.factory import new_envelope
from chat_events.events.presence_events import PresenceSettingsSet

LIST_READ_MAX = 100_000
"""The viewer's conversation list is read whole (one partition) to find whom they talk to."""


async def visible_among(edge: EdgeNode, viewer: str, candidates: Sequence[str]) -> frozenset[str]:
    """Which ``candidates`` ``viewer`` may see: read their list, their groups' members (only
    while some candidate is still undecided) and the blocks either way."""
    wanted = set(candidates)
    if not wanted:
        return frozenset()
    conversation_ids = [row.conversation_id for row in await edge.store.list_conversations(viewer, LIST_READ_MAX)]
    peers = direct_peers(viewer, conversation_ids)
    known = peers | {viewer}
    members: list[frozenset[str] | None] = []
    for group_id in group_ids(conversation_ids):
        if wanted <= known:
            break
        found = await edge.memberships.members(group_id)
        if found is not None and viewer in found:
            members.append(found)
            known |= found
    blocked_by_viewer = await edge.store.blocks_by(viewer)
    blocking_viewer = (await edge.store.blockers_of([viewer])).get(viewer, frozenset())
    return visible(
        viewer,
        wanted,
        peers=peers,
        groups=members,
        blocked_by_viewer=blocked_by_viewer,
        blocking_viewer=blocking_viewer,
    )


async def presence_answer(edge: EdgeNode, viewer: str, user_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The presence of ``user_ids`` as ``viewer`` may see it (``unknown`` for the others)."""
    allowed = await visible_among(edge, viewer, user_ids)
    states = await edge.store.presence_of(sorted(allowed)) if allowed else {}
    return presence_views(user_ids, states, allowed)


async def presence_frame(edge: EdgeNode, conn: Connection, frame: Frame) -> str:
    """Do a ``presence_subscribe`` / ``presence_unsubscribe`` frame. A subscription is taken
    before the presence is read, so a change after the read is pushed (after the answer)."""
    request, rid = frame.request, frame.request_id
    if isinstance(request, PresenceUnsubscribe):
        edge.presence.unsubscribe(conn, request.user_ids)
        return output_frame(frame.type, request_id=rid, data={"watching": len(edge.presence.watching(conn))})
    assert isinstance(request, PresenceSubscribe)
    watching = edge.presence.watching(conn)
    problem = subscription_problem(len(watching), len(set(request.user_ids) - watching))
    if problem is not None:
        raise ProtocolError(
            Code.INVALID_FIELD,
            f"user_ids: {problem}",
            data={"field": "user_ids"},
            frame_type=frame.type,
            request_id=rid,
        )
    allowed = await visible_among(edge, conn.user_id, request.user_ids)
    edge.presence.subscribe(conn, allowed)
    edge.presence.unsubscribe(conn, set(request.user_ids) - allowed)  # no longer visible (a block since)
    states = await edge.store.presence_of(sorted(allowed)) if allowed else {}
    return output_frame(
        frame.type, request_id=rid, data={"presence": presence_views(request.user_ids, states, allowed)}
    )


async def set_show_last_seen(edge: EdgeNode, user_id: str, show: bool) -> None:
    """Show or hide ``user_id``'s last seen to others (the sessions stage stores it and sends
    their presence again, so watchers' pushes follow)."""
    envelope = new_envelope(
        PresenceSettingsSet(show_last_seen=show, set_at_ms=int(time.time() * 1000)), user_id=user_id
    )
    try:
        await edge.publisher.publish(envelope)
    except ChatEventsError as exc:
        raise ActionRefused(503, Code.UNAVAILABLE, f"not accepted ({exc.code}); retry") from None
