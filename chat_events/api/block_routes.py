"""HTTP routes of blocks (issue 16, item 5): ``POST /v1/blocks`` {user_id}, ``DELETE
/v1/blocks/{user_id}`` and ``GET /v1/blocks`` (whom I block, each with ``since_ms``). Changes go
through :mod:`chat_events.api.block_actions`: 200 once the store shows them, 202 ``pending``
if the workers are slow."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, StrictStr

from chat_events.api.block_actions import BlockOutcome, set_block
from chat_events.api.block_rules import blocks_view
from chat_events.api.conversation_actions import ActionRefused
from chat_events.api.edge import EdgeNode
from chat_events.api.http_routes import ApiError, CurrentUser, Edge

router = APIRouter()


class BlockBody(BaseModel):
    user_id: StrictStr


@router.get("/v1/blocks")
async def blocks(user: CurrentUser, edge: Edge) -> dict[str, Any]:
    """Whom I block, newest first: ``{"blocks": [{"user_id", "since_ms"}]}``."""
    return {"blocks": blocks_view(await edge.store.blocks_by(user))}


@router.post("/v1/blocks")
async def block(body: BlockBody, user: CurrentUser, edge: Edge) -> JSONResponse:
    return _answer(await _change(edge, user, body.user_id, active=True))


@router.delete("/v1/blocks/{user_id}")
async def unblock(user_id: str, user: CurrentUser, edge: Edge) -> JSONResponse:
    return _answer(await _change(edge, user, user_id, active=False))


async def _change(edge: EdgeNode, user: str, target: str, *, active: bool) -> BlockOutcome:
    try:
        return await set_block(edge, user, target, active=active)
    except ActionRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None


def _answer(outcome: BlockOutcome) -> JSONResponse:
    return JSONResponse(outcome.view(), status_code=200 if outcome.applied else 202)
