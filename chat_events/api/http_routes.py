"""The HTTP API: what is not a stream. Dev tokens, groups, history, health.

Group changes are events (``chat.group-events``) that the workers apply to the store; a route
publishes the event and then waits (briefly) until the store shows it, so a client can post to
a group right after creating it. If the workers are slow the answer is 202 (accepted, pending).
Errors are ``{"code": <protocol Code>, "message": ...}`` with a fitting HTTP status.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictStr

from chat_events.api.authz import (
    conversation_id_problem,
    direct_participants,
    may_read,
)
from chat_events.api.block_rules import hide_blocked
from chat_events.api.edge import EdgeNode
from chat_events.api.group_rules import member_change_refusal
from chat_events.api.history import NEWEST, After, Problem, Range, range_body, select_page
from chat_events.api.message_render import render
from chat_events.api.protocol import Code
from chat_events.api.tokens import TokenError, issue_token, verify_token
from chat_events.errors import ChatEventsError
from chat_events.events.factory import new_envelope
from chat_events.events.types import GroupCreated, GroupMemberJoined, GroupMemberLeft
from chat_events.events.validation import ID_PATTERN, MAX_GROUP_NAME
from chat_events.streams.group_system import system_message_id

APPLY_WAIT_S = 5.0
ID_REGEX = f"^{ID_PATTERN.pattern}$"  # pydantic searches; anchor it


class ApiError(Exception):
    def __init__(self, status: int, code: Code, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def api_error_response(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"code": int(exc.code), "message": exc.message}, status_code=exc.status)


def get_edge(request: Request) -> EdgeNode:
    edge: EdgeNode = request.app.state.edge
    return edge


Edge = Annotated[EdgeNode, Depends(get_edge)]


def current_user(request: Request, edge: Edge) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, Code.UNAUTHORIZED, "Authorization: Bearer <token> required")
    try:
        return verify_token(token.strip(), edge.settings.auth_secret.get_secret_value()).user_id
    except TokenError as exc:
        raise ApiError(401, Code.SESSION_EXPIRED if exc.expired else Code.UNAUTHORIZED, str(exc)) from None


CurrentUser = Annotated[str, Depends(current_user)]
router = APIRouter()


# --- health ------------------------------------------------------------------------------


@router.get("/healthz")
async def health(edge: Edge) -> dict[str, Any]:
    return {"status": "ok", "edge_id": edge.edge_id, "connections": len(edge.registry)}


@router.get("/readyz")
async def ready(edge: Edge) -> JSONResponse:
    """200 once a sign-in here would be registered: this edge is started (not stopping) and the
    workers' sessions stage runs (``worker_watch.py``)."""
    workers = edge.workers.ready
    ready = edge.ready and workers
    body = {"ready": ready, "edge_id": edge.edge_id, "workers": workers}
    return JSONResponse(body, status_code=200 if ready else 503)


# --- dev tokens ----------------------------------------------------------------------------


class DevTokenRequest(BaseModel):
    user_id: str = Field(pattern=ID_REGEX, max_length=128)
    ttl_s: int | None = Field(default=None, ge=10, le=30 * 86400)


@router.post("/v1/dev/token")
async def dev_token(body: DevTokenRequest, edge: Edge) -> dict[str, Any]:
    """Development mode only: a token for any user id (there are no passwords here)."""
    if edge.settings.environment != "development":
        raise ApiError(404, Code.NOT_FOUND, "not found")
    token, expires = issue_token(
        body.user_id, edge.settings.auth_secret.get_secret_value(), ttl_s=body.ttl_s or edge.settings.token_ttl_s
    )
    return {"token": token, "user_id": body.user_id, "expires_at_ms": expires}


# --- groups --------------------------------------------------------------------------------


class CreateGroup(BaseModel):
    name: str = Field(min_length=1, max_length=MAX_GROUP_NAME)
    member_ids: list[Annotated[str, Field(pattern=ID_REGEX, max_length=128)]] = Field(
        default_factory=list, max_length=10_000
    )
    group_id: str | None = Field(default=None, pattern=ID_REGEX, max_length=128)
    avatar_url: StrictStr = Field(default="", max_length=2048, pattern=r"^(https?://.*)?$")
    description: StrictStr = Field(default="", max_length=2000)


class AddMember(BaseModel):
    user_id: str = Field(pattern=ID_REGEX, max_length=128)


@router.post("/v1/groups", status_code=201)
async def create_group(body: CreateGroup, user: CurrentUser, edge: Edge) -> JSONResponse:
    group_id = body.group_id or f"g-{uuid.uuid4().hex}"
    if await edge.store.get_group(group_id) is not None:
        raise ApiError(409, Code.INVALID_FIELD, f"group {group_id} exists")
    members = tuple(sorted(set(body.member_ids) - {user}))
    event = GroupCreated(
        group_id=group_id,
        name=body.name,
        owner_id=user,
        member_ids=members,
        avatar_url=body.avatar_url,
        description=body.description,
    )
    envelope = new_envelope(event, user_id=user)
    await _publish(edge, envelope)

    async def visible() -> bool:  # and announced: what the creator sends next comes after its system message
        return await edge.store.get_group(group_id) is not None and await announced(edge, envelope.id)

    applied = await _until(visible)
    edge.memberships.forget(group_id)
    body_out = {"group_id": group_id, "name": body.name, "owner_id": user, "member_ids": [user, *members]}
    return JSONResponse(body_out if applied else {**body_out, "status": "pending"}, status_code=201 if applied else 202)


# GET /v1/groups/{group_id} (the group with a page of its members) is in group_routes.py


@router.post("/v1/groups/{group_id}/members")
async def add_member(group_id: str, body: AddMember, user: CurrentUser, edge: Edge) -> JSONResponse:
    return await _change_member(edge, group_id, actor=user, subject=body.user_id, adding=True)


@router.delete("/v1/groups/{group_id}/members/{member_id}")
async def remove_member(group_id: str, member_id: str, user: CurrentUser, edge: Edge) -> JSONResponse:
    if not ID_PATTERN.fullmatch(member_id):
        raise ApiError(422, Code.INVALID_FIELD, "member_id is not a valid user id")
    return await _change_member(edge, group_id, actor=user, subject=member_id, adding=False)


async def _change_member(edge: EdgeNode, group_id: str, *, actor: str, subject: str, adding: bool) -> JSONResponse:
    from chat_events.api.group_actions import load_view  # roles (group_rules.py): admins remove members too

    loaded = await load_view(edge, group_id, [actor, subject])
    refusal = member_change_refusal(loaded[1] if loaded else None, actor, subject, adding=adding)
    if refusal is not None:
        raise ApiError(403, Code.FORBIDDEN, refusal)
    members = loaded[1].members if loaded else frozenset()
    if (subject in members) == adding:  # already so: idempotent
        return JSONResponse({"group_id": group_id, "user_id": subject, "member": adding})
    event: GroupMemberJoined | GroupMemberLeft = (
        GroupMemberJoined(group_id=group_id, member_id=subject, added_by=actor)
        if adding
        else GroupMemberLeft(group_id=group_id, member_id=subject, removed_by=actor)
    )
    envelope = new_envelope(event, user_id=actor)
    await _publish(edge, envelope)

    async def applied_check() -> bool:
        current = (await edge.store.group_members([group_id])).get(group_id, frozenset())
        return (subject in current) == adding and await announced(edge, envelope.id)

    applied = await _until(applied_check)
    edge.memberships.forget(group_id)
    edge.group_states.forget(group_id)
    body = {"group_id": group_id, "user_id": subject, "member": adding}
    return JSONResponse(body if applied else {**body, "status": "pending"}, status_code=200 if applied else 202)


# --- history ---------------------------------------------------------------------------


@router.get("/v1/conversations/{conversation_id}/messages")
async def history(
    conversation_id: str,
    user: CurrentUser,
    edge: Edge,
    after_seq: Annotated[int | None, Query(ge=0)] = None,
    before_seq: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    from_seq: Annotated[int | None, Query(ge=0, le=NEWEST)] = None,
    to_seq: Annotated[int | None, Query(ge=0, le=NEWEST)] = None,
) -> dict[str, Any]:
    """Paged by conversation seq: ``after_seq`` ascending, ``before_seq`` newest first (neither =
    the newest page), or the closed range ``from_seq..to_seq`` ascending (``history.py``)."""
    selection = select_page(after_seq=after_seq, before_seq=before_seq, from_seq=from_seq, to_seq=to_seq)
    if isinstance(selection, Problem):
        raise ApiError(422, Code.INVALID_FIELD, selection.message)
    problem = conversation_id_problem(conversation_id)
    if problem is not None:
        raise ApiError(422, Code.INVALID_FIELD, f"conversation_id: {problem}")
    direct = direct_participants(conversation_id) is not None
    members = None if direct else await edge.memberships.members(conversation_id, including=user)
    if not may_read(user, conversation_id, members):
        raise ApiError(403, Code.FORBIDDEN, f"not a member of {conversation_id}")
    blocks = await edge.store.blocks_by(user)  # messages of users I block, since the block: hidden
    if isinstance(selection, Range):
        ranged = await edge.store.conversation_range(conversation_id, selection.from_seq, selection.to_seq, limit)
        return hide_blocked(range_body(await render(edge.store, user, ranged.items), ranged.has_more), blocks)
    after, before = (selection.seq, None) if isinstance(selection, After) else (None, selection.seq)
    page = await edge.store.conversation_messages(conversation_id, after_seq=after, before_seq=before, limit=limit)
    return hide_blocked({"messages": await render(edge.store, user, page.items), "has_more": page.has_more}, blocks)


# --- helpers -------------------------------------------------------------------------------


async def _publish(edge: EdgeNode, envelope: Any) -> None:
    try:
        await edge.publisher.publish(envelope)
    except ChatEventsError as exc:
        raise ApiError(503, Code.UNAVAILABLE, f"not accepted ({exc.code}); retry") from None


async def announced(edge: EdgeNode, envelope_id: str) -> bool:
    """Whether the system message of the group change ``envelope_id`` is stored with its seq
    (``streams/group_system.py``): a change is answered only then, so what the client sends next
    is ordered after it in the conversation."""
    return bool(await edge.store.find_messages([system_message_id(envelope_id)]))


async def _until(check: Callable[[], Awaitable[bool]], timeout_s: float = APPLY_WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while not await check():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(0.1, delay * 2)
    return True
