"""HTTP route of presence (issue 16, item 6): ``GET /v1/presence?user_ids=a,b,c``, the presence
of up to 500 users as the asking user may see it (``unknown`` for the others; rules in
:mod:`chat_events.api.presence_rules`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from chat_events.api.http_routes import ApiError, CurrentUser, Edge
from chat_events.api.presence_actions import presence_answer
from chat_events.api.presence_rules import user_ids_problem
from chat_events.api.protocol import Code

router = APIRouter()


@router.get("/v1/presence")
async def presence(
    user: CurrentUser, edge: Edge, user_ids: Annotated[str, Query(description="Comma-separated user ids (1-500).")]
) -> dict[str, Any]:
    """``{"presence": [{"user_id", "status": "online"|"offline"|"unknown", "last_seen_ms"}]}``,
    each user once in the order asked."""
    ids = user_ids.split(",") if user_ids else []
    problem = user_ids_problem(ids)
    if problem is not None:
        raise ApiError(422, Code.INVALID_FIELD, f"{problem[0]}: {problem[1]}")
    return {"presence": await presence_answer(edge, user, list(dict.fromkeys(ids)))}
