"""HTTP routes of the conversation list (bilibili ImInterface): the list and what changed
since a version, detail of one or many, unread counts, read progress, pin / mute / remove,
mark everything read, and who has read a group message. Reads come from the store; changes go
through :mod:`chat_events.api.conversation_actions` as events (answered 202: the worker applies
them and pushes the new rows to the user's devices)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictBool, StrictInt

from chat_events.api.authz import direct_participants
from chat_events.api.conversation_actions import (
    MAX_BATCH_CONVERSATIONS,
    ActionRefused,
    check_conversation_ids,
    check_member,
    read,
    read_all,
    set_flags,
    set_settings,
)
from chat_events.api.conversation_list import BadCursor, changes_page, list_page, list_version, unread_counts
from chat_events.api.edge import EdgeNode
from chat_events.api.http_routes import ApiError, CurrentUser, Edge
from chat_events.api.protocol import Code
from chat_events.api.views import conversation_view
from chat_events.store.models import ConversationState

router = APIRouter()
LIST_READ_MAX = 100_000
"""The list is read whole (a user's rows are one partition) and paged here."""


class ReadBody(BaseModel):
    seq: StrictInt = Field(
        ge=0, le=2**63 - 1, description="Read up to this conversation seq (clamped to the last one)."
    )


class FlagsBody(BaseModel):
    pinned: StrictBool | None = None
    muted: StrictBool | None = None
    hidden: StrictBool | None = None


class SettingsBody(BaseModel):
    read_receipts: StrictBool | None = Field(default=None, description="Send read receipts to the other members.")
    show_last_seen: StrictBool | None = Field(default=None, description="Others see when I was last online.")


class IdsBody(BaseModel):
    conversation_ids: list[str] = Field(min_length=1, max_length=MAX_BATCH_CONVERSATIONS)


@router.get("/v1/conversations")
async def conversations(
    user: CurrentUser,
    edge: Edge,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    since_version: Annotated[int | None, Query(ge=0)] = None,
) -> dict[str, Any]:
    """The list (pinned first, then latest activity; removed ones left out) or, with
    ``since_version``, every row changed after it (removed ones included), paged by ``cursor``."""
    rows = await edge.store.list_conversations(user, LIST_READ_MAX)
    try:
        if since_version is None:
            page = list_page(rows, limit=limit, cursor=cursor)
        else:
            page = changes_page(rows, since_version=since_version, limit=limit, cursor=cursor)
    except BadCursor as exc:
        raise ApiError(422, Code.INVALID_FIELD, f"cursor: {exc}") from None
    return {
        "conversations": await _views(edge, user, page.rows),
        "has_more": page.has_more,
        "next_cursor": page.next_cursor,
        "version": list_version(rows),
    }


@router.post("/v1/conversations/detail")
async def details(body: IdsBody, user: CurrentUser, edge: Edge) -> dict[str, Any]:
    """Rows of several conversations by id (bilibili ``BatchSessDetail``), in the order asked."""
    ids = list(dict.fromkeys(body.conversation_ids))
    found = await _rows(edge, user, ids)
    missing = [i for i in ids if i not in found]
    if missing:
        raise ApiError(404, Code.NOT_FOUND, f"no such conversation in your list: {', '.join(missing)}")
    return {"conversations": await _views(edge, user, [found[i] for i in ids])}


@router.get("/v1/conversations/{conversation_id}")
async def detail(conversation_id: str, user: CurrentUser, edge: Edge) -> dict[str, Any]:
    """One row (bilibili ``SessionDetail``); 404 (code 11) when the user has no such row."""
    found = await _rows(edge, user, [conversation_id])
    if conversation_id not in found:
        raise ApiError(404, Code.NOT_FOUND, f"no such conversation in your list: {conversation_id}")
    return (await _views(edge, user, [found[conversation_id]]))[0]


@router.get("/v1/unread")
async def unread(user: CurrentUser, edge: Edge) -> dict[str, Any]:
    """Unread counts: ``total`` without muted conversations (the app badge), ``groups`` the same
    for groups only, and ``conversations`` per conversation with unread messages."""
    counts = unread_counts(await edge.store.list_conversations(user, LIST_READ_MAX))
    return {"total": counts.total, "groups": counts.groups, "conversations": counts.by_conversation}


@router.post("/v1/conversations/{conversation_id}/read", status_code=202)
async def mark_read(conversation_id: str, body: ReadBody, user: CurrentUser, edge: Edge) -> dict[str, Any]:
    read_seq = await _act(read(edge, user, conversation_id, body.seq, None))
    return {"conversation_id": conversation_id, "read_seq": read_seq, "status": "accepted"}


@router.patch("/v1/conversations/{conversation_id}", status_code=202)
async def set_conversation_flags(
    conversation_id: str, body: FlagsBody, user: CurrentUser, edge: Edge
) -> dict[str, Any]:
    await _act(set_flags(edge, user, [conversation_id], pinned=body.pinned, muted=body.muted, hidden=body.hidden))
    return {"conversation_ids": [conversation_id], "status": "accepted"}


@router.post("/v1/conversations/remove", status_code=202)
async def remove(body: IdsBody, user: CurrentUser, edge: Edge) -> dict[str, Any]:
    """Remove several conversations from the list (bilibili ``BatchRmSessions``)."""
    await _act(set_flags(edge, user, body.conversation_ids, pinned=None, muted=None, hidden=True))
    return {"conversation_ids": list(dict.fromkeys(body.conversation_ids)), "status": "accepted"}


@router.post("/v1/conversations/read-all", status_code=202)
async def mark_all_read(user: CurrentUser, edge: Edge) -> dict[str, Any]:
    await _act(read_all(edge, user))
    return {"status": "accepted"}


@router.get("/v1/settings")
async def get_settings(user: CurrentUser, edge: Edge) -> dict[str, Any]:
    return {
        "read_receipts": (await edge.store.read_receipts_enabled([user]))[user],
        "show_last_seen": (await edge.store.presence_of([user]))[user].show_last_seen,
    }


@router.put("/v1/settings", status_code=202)
async def put_settings(body: SettingsBody, user: CurrentUser, edge: Edge) -> dict[str, Any]:
    """Applied by the workers shortly after (202): read ``GET /v1/settings`` for the stored value."""
    if body.read_receipts is None and body.show_last_seen is None:
        raise ApiError(422, Code.INVALID_FIELD, "read_receipts: give read_receipts or show_last_seen (true or false)")
    changed = await _act(set_settings(edge, user, body.read_receipts, body.show_last_seen))
    return {**changed, "status": "accepted"}


@router.get("/v1/conversations/{conversation_id}/read-by")
async def read_by(
    conversation_id: str, user: CurrentUser, edge: Edge, seq: Annotated[int, Query(ge=1)]
) -> JSONResponse:
    """Who of the other members has read up to ``seq``: the peer of a 1:1 conversation, the
    members of a group up to ``CHAT_READ_RECEIPTS_MAX_GROUP`` members (422, code 5, above);
    never a member who turned read receipts off."""
    await _act(_check(edge, user, conversation_id))
    pair = direct_participants(conversation_id)
    members = set(pair) if pair else set(await edge.memberships.members(conversation_id) or ())
    if pair is None and len(members) > edge.settings.read_receipts_max_group:
        raise ApiError(
            422,
            Code.INVALID_FIELD,
            f"conversation_id: read-by is kept for groups up to {edge.settings.read_receipts_max_group} members",
        )
    others = sorted(members - {user})
    rows, sharing = await asyncio.gather(
        edge.store.get_conversations((m, conversation_id) for m in others), edge.store.read_receipts_enabled(others)
    )
    readers = [  # a member who turned read receipts off is never listed
        m for m in others if sharing[m] and (row := rows.get((m, conversation_id))) is not None and row.read_seq >= seq
    ]
    return JSONResponse({"conversation_id": conversation_id, "seq": seq, "read_by": readers})


async def _check(edge: EdgeNode, user: str, conversation_id: str) -> None:
    check_conversation_ids([conversation_id], "conversation_id")
    await check_member(edge, user, conversation_id)


async def _act(action: Any) -> Any:
    try:
        return await action
    except ActionRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None


async def _rows(edge: EdgeNode, user: str, ids: list[str]) -> dict[str, ConversationState]:
    try:
        check_conversation_ids(ids, "conversation_ids")
    except ActionRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    found = await edge.store.get_conversations((user, i) for i in ids)
    return {conversation_id: row for (_, conversation_id), row in found.items()}


async def _views(edge: EdgeNode, user: str, rows: Any) -> list[dict[str, Any]]:
    """List rows with the peer (1:1) or the group's name."""
    rows = list(rows)
    group_ids = sorted({r.conversation_id for r in rows if direct_participants(r.conversation_id) is None})
    groups = await asyncio.gather(*(edge.store.get_group(g) for g in group_ids))
    names = {g: (group.name if group else None) for g, group in zip(group_ids, groups, strict=True)}
    views = []
    for row in rows:
        view = conversation_view(row)
        pair = direct_participants(row.conversation_id)
        if pair is not None:
            view["peer_id"] = pair[1] if pair[0] == user else pair[0]
        else:
            view["name"] = names.get(row.conversation_id)
        views.append(view)
    return views
