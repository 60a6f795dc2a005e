"""HTTP routes that change a sent message (issue 16, items 1 and 2), the same checks and events
as the ``edit`` / ``recall`` / ``delete`` / ``react`` frames (:mod:`chat_events.api.message_changes`;
the bodies are the frames' ``data``, parsed by :mod:`chat_events.api.message_change_frames`):

* ``PATCH /v1/messages/{id}`` ``{"content", "client_msg_id", "mentions"?}``: edit;
* ``POST /v1/messages/{id}/recall`` ``{"client_msg_id"}``;
* ``POST /v1/messages/{id}/delete`` ``{"scope": "me" | "everyone", "client_msg_id"}``;
* ``POST /v1/messages/{id}/reactions`` ``{"emoji", "remove"?, "client_msg_id"}``.

Each answers 200 once Kafka has the change (like a ``send``'s answer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Body

from chat_events.api import message_change_frames as frames
from chat_events.api.conversation_actions import ActionRefused
from chat_events.api.http_routes import ApiError, CurrentUser, Edge
from chat_events.api.message_changes import change_message
from chat_events.api.protocol import Code, _Invalid

router = APIRouter()
JsonBody = Body(..., description="The matching frame's data (docs/protocol.md).")


@router.patch("/v1/messages/{message_id}")
async def edit(message_id: str, user: CurrentUser, edge: Edge, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    return await _change(edge, user, frames.parse_edit, message_id, body)


@router.post("/v1/messages/{message_id}/recall")
async def recall(message_id: str, user: CurrentUser, edge: Edge, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    return await _change(edge, user, frames.parse_recall, message_id, body)


@router.post("/v1/messages/{message_id}/delete")
async def delete(message_id: str, user: CurrentUser, edge: Edge, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    return await _change(edge, user, frames.parse_delete, message_id, body)


@router.post("/v1/messages/{message_id}/reactions")
async def react(message_id: str, user: CurrentUser, edge: Edge, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    return await _change(edge, user, frames.parse_react, message_id, body)


async def _change(
    edge: Any,
    user: str,
    parse: Callable[[dict[str, Any], int], frames.MessageChangeRequest],
    message_id: str,
    body: dict[str, Any],
) -> dict[str, Any]:
    try:
        request = parse({**body, "message_id": message_id}, edge.settings.max_payload_bytes)
    except _Invalid as exc:
        code = Code.PAYLOAD_TOO_LARGE if exc.too_large else Code.INVALID_FIELD
        raise ApiError(413 if exc.too_large else 422, code, f"{exc.field}: {exc.reason}") from None
    try:
        return await change_message(edge, user, request)
    except ActionRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
