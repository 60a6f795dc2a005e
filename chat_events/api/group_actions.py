"""Group administration at the edge (issue 16, item 4), for the routes of
:mod:`chat_events.api.group_routes`: load the stored group (:func:`load_view`), check the change
(:mod:`chat_events.api.group_rules`), publish its event to ``chat.group-events`` keyed by the
group, then wait until the store shows it (as creating a group does: 200, or 202 ``pending``
after :data:`~chat_events.api.http_routes.APPLY_WAIT_S`). The groups stage checks the change
again and announces it in the conversation as a system message. Nothing is published for a
refused change, nor for one that changes nothing."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi.responses import JSONResponse

from chat_events.api.edge import EdgeNode
from chat_events.api.group_rules import DISSOLVED, MUTED, GroupView, send_muted
from chat_events.api.http_routes import ApiError, _publish, _until, announced
from chat_events.api.protocol import Code
from chat_events.events.factory import new_envelope
from chat_events.events.types import Event
from chat_events.store.group_models import GroupProfile


async def load_view(edge: EdgeNode, group_id: str, users: Iterable[str]) -> tuple[GroupProfile, GroupView] | None:
    """The stored group as the rules see it, with the role rows of ``users``; None if unknown."""
    profile = (await edge.store.group_profiles([group_id])).get(group_id)
    if profile is None:
        return None
    members = (await edge.store.group_members([group_id])).get(group_id, frozenset())
    roles = await edge.store.group_roles((group_id, u) for u in set(users))
    return profile, GroupView(profile.owner_id, members, profile.dissolved, {u: r for (_, u), r in roles.items()})


def refuse(refusal: str | None) -> None:
    """Raise the HTTP answer of a refusal: 403 with code 8 (an outsider, a missing group, a
    role that may not do it, a dissolved group alike)."""
    if refusal is not None:
        raise ApiError(403, Code.FORBIDDEN, refusal)


async def publish_and_wait(
    edge: EdgeNode,
    group_id: str,
    actor: str,
    event: Event,
    applied: Callable[[], Awaitable[bool]],
    body: dict[str, Any],
) -> JSONResponse:
    """Publish ``event`` for ``actor``, wait for ``applied`` and for its system message to be
    stored (so what the client sends next comes after it), forget the group's cached state."""
    envelope = new_envelope(event, user_id=actor)
    await _publish(edge, envelope)

    async def shown() -> bool:
        return await applied() and await announced(edge, envelope.id)

    done = await _until(shown)
    edge.memberships.forget(group_id)
    edge.group_states.forget(group_id)
    return JSONResponse(body if done else {**body, "status": "pending"}, status_code=200 if done else 202)


async def group_send_refusal(edge: EdgeNode, group_id: str, user_id: str) -> tuple[Code, str] | None:
    """Why a member may not post to a group now (after the membership check): the group is
    dissolved (8, as for a group one is not in) or they are muted in it (19)."""
    dissolved, role = await edge.group_states.state(group_id, user_id)
    if dissolved:
        return Code.FORBIDDEN, DISSOLVED
    if send_muted(role, int(time.time() * 1000)):
        return Code.MUTED, MUTED
    return None
