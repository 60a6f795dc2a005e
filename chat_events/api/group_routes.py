"""HTTP routes of group administration (issue 16, item 4; Netalo's update_group, list_group,
check_group, block a user in a chat group):

* ``GET /v1/groups?sort_by=&cursor=&limit=``: my groups (active member, not dissolved);
* ``GET /v1/groups/{id}?members_after=&members_limit=``: the group with a page of its members;
* ``PATCH /v1/groups/{id}`` {name?, avatar_url?, description?}: owner and admins;
* ``PUT /v1/groups/{id}/members/{member_id}/role`` {role: admin|member}: the owner;
* ``POST /v1/groups/{id}/owner`` {user_id}: the owner transfers ownership (they become an admin);
* ``PUT /v1/groups/{id}/members/{member_id}/mute`` {muted, until_ms?}: owner and admins;
* ``DELETE /v1/groups/{id}``: the owner dissolves the group.

Who may do what is :mod:`chat_events.api.group_rules`; each change goes through
:mod:`chat_events.api.group_actions` (publish, wait until stored: 200, or 202 ``pending``).
Anyone not an active member gets 403 / 8 ``no such group, or you are not a member``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr

from chat_events.api.authz import HIDDEN_GROUP
from chat_events.api.group_actions import load_view, publish_and_wait, refuse
from chat_events.api.group_rules import (
    SETTABLE_ROLES,
    dissolve_refusal,
    mute_refusal,
    role_refusal,
    update_refusal,
)
from chat_events.api.http_routes import ID_REGEX, ApiError, CurrentUser, Edge
from chat_events.api.protocol import Code
from chat_events.events.change_validation import MAX_AVATAR_URL, MAX_DESCRIPTION
from chat_events.events.group_events import GroupDissolved, GroupMemberMuted, GroupMemberRoleSet, GroupUpdated
from chat_events.events.validation import ID_PATTERN, INT64, MAX_GROUP_NAME
from chat_events.store.group_models import MY_GROUP_SORTS, GroupMember, MyGroup
from chat_events.store.group_pages import my_group_cursor

router = APIRouter()

MemberId = Annotated[StrictStr, Field(pattern=ID_REGEX, max_length=128)]
AvatarUrl = Annotated[StrictStr, Field(max_length=MAX_AVATAR_URL, pattern=r"^(https?://.*)?$")]


class UpdateGroup(BaseModel):
    name: Annotated[StrictStr, Field(min_length=1, max_length=MAX_GROUP_NAME)] | None = None
    avatar_url: AvatarUrl | None = None
    description: Annotated[StrictStr, Field(max_length=MAX_DESCRIPTION)] | None = None


class SetRole(BaseModel):
    role: StrictStr


class TransferOwner(BaseModel):
    user_id: MemberId


class SetMute(BaseModel):
    muted: StrictBool
    until_ms: Annotated[StrictInt, Field(ge=0, le=INT64[1])] = 0
    """0: until unmuted; otherwise when the mute ends by itself (ms since the epoch)."""


def my_group_view(group: MyGroup) -> dict[str, Any]:
    return {
        "group_id": group.group_id,
        "name": group.name,
        "avatar_url": group.avatar_url,
        "owner_id": group.owner_id,
        "created_at_ms": group.created_at_ms,
        "joined_at_ms": group.joined_at_ms,
        "role": group.role,
    }


def member_view(member: GroupMember) -> dict[str, Any]:
    return {
        "user_id": member.user_id,
        "role": member.role,
        "joined_at_ms": member.joined_at_ms,
        "muted": member.muted,
        "muted_until_ms": member.muted_until_ms,
    }


def _member_id(member_id: str) -> str:
    if not ID_PATTERN.fullmatch(member_id):
        raise ApiError(422, Code.INVALID_FIELD, "member_id: is not a valid user id")
    return member_id


@router.get("/v1/groups")
async def my_groups(
    user: CurrentUser,
    edge: Edge,
    sort_by: Annotated[str, Query()] = "joined",
    cursor: Annotated[str | None, Query(max_length=1024)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """My groups, ``sort_by`` ``joined`` (default, newest first), ``created`` (newest first) or
    ``name``; ``next_cursor`` continues when ``has_more``."""
    if sort_by not in MY_GROUP_SORTS:
        raise ApiError(422, Code.INVALID_FIELD, f"sort_by: must be one of {', '.join(MY_GROUP_SORTS)}")
    try:
        page = await edge.store.my_groups(user, sort_by=sort_by, cursor=cursor, limit=limit)
    except ValueError as exc:
        raise ApiError(422, Code.INVALID_FIELD, f"cursor: {exc}") from None
    next_cursor = my_group_cursor(page.items[-1], sort_by) if page.has_more and page.items else None
    return {"groups": [my_group_view(g) for g in page.items], "has_more": page.has_more, "next_cursor": next_cursor}


@router.get("/v1/groups/{group_id}")
async def group_detail(
    group_id: str,
    user: CurrentUser,
    edge: Edge,
    members_after: Annotated[str | None, Query(pattern=ID_REGEX, max_length=128)] = None,
    members_limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Netalo's check_group: the group's profile, my role, and a page of its members by user
    id (``members_after`` = the last user id of the previous page). Its last members still see
    a dissolved group (``dissolved`` true)."""
    loaded = await load_view(edge, group_id, [user])
    if loaded is None or loaded[1].role_of(user) is None:
        raise ApiError(403, Code.FORBIDDEN, HIDDEN_GROUP)
    profile, view = loaded
    page = await edge.store.group_member_page(group_id, after_user_id=members_after, limit=members_limit)
    members = [member_view(m) for m in page.items]
    return {
        "group_id": group_id,
        "name": profile.name,
        "avatar_url": profile.avatar_url,
        "description": profile.description,
        "owner_id": profile.owner_id,
        "created_at_ms": profile.created_at_ms,
        "updated_at_ms": profile.updated_at_ms,
        "dissolved": profile.dissolved,
        "my_role": view.role_of(user),
        "member_count": len(view.members),
        "members": members,
        "member_ids": [m["user_id"] for m in members],
        "members_has_more": page.has_more,
    }


@router.patch("/v1/groups/{group_id}")
async def update_group(group_id: str, body: UpdateGroup, user: CurrentUser, edge: Edge) -> JSONResponse:
    if body.name is None and body.avatar_url is None and body.description is None:
        raise ApiError(422, Code.INVALID_FIELD, "body: give name, avatar_url or description")
    loaded = await load_view(edge, group_id, [user])
    refuse(update_refusal(loaded[1] if loaded else None, user))
    assert loaded is not None
    profile = loaded[0]
    wanted = {"name": body.name, "avatar_url": body.avatar_url, "description": body.description}
    changed = {k: v for k, v in wanted.items() if v is not None and getattr(profile, k) != v}
    answer = {"group_id": group_id, **{k: getattr(profile, k) for k in wanted}, **changed}
    if not changed:  # already so: nothing published
        return JSONResponse(answer)
    event = GroupUpdated(group_id=group_id, updated_by=user, **changed)

    async def applied() -> bool:
        now = (await edge.store.group_profiles([group_id]))[group_id]
        return all(getattr(now, k) == v for k, v in changed.items())

    return await publish_and_wait(edge, group_id, user, event, applied, answer)


@router.put("/v1/groups/{group_id}/members/{member_id}/role")
async def set_role(group_id: str, member_id: str, body: SetRole, user: CurrentUser, edge: Edge) -> JSONResponse:
    member_id = _member_id(member_id)
    if body.role not in SETTABLE_ROLES:
        roles = ", ".join(SETTABLE_ROLES)
        raise ApiError(422, Code.INVALID_FIELD, f"role: must be one of {roles} (to transfer ownership: POST .../owner)")
    return await _set_role(edge, group_id, user, member_id, body.role)


@router.post("/v1/groups/{group_id}/owner")
async def transfer_owner(group_id: str, body: TransferOwner, user: CurrentUser, edge: Edge) -> JSONResponse:
    return await _set_role(edge, group_id, user, body.user_id, "owner")


async def _set_role(edge: Any, group_id: str, user: str, member_id: str, role: str) -> JSONResponse:
    loaded = await load_view(edge, group_id, [user, member_id])
    refuse(role_refusal(loaded[1] if loaded else None, user, member_id, role))
    assert loaded is not None
    answer = {"group_id": group_id, "user_id": member_id, "role": role}
    if loaded[1].role_of(member_id) == role:
        return JSONResponse(answer)
    event = GroupMemberRoleSet(group_id=group_id, member_id=member_id, role=role, set_by=user)

    async def applied() -> bool:
        now = await load_view(edge, group_id, [member_id])
        return now is not None and now[1].role_of(member_id) == role

    return await publish_and_wait(edge, group_id, user, event, applied, answer)


@router.put("/v1/groups/{group_id}/members/{member_id}/mute")
async def set_mute(group_id: str, member_id: str, body: SetMute, user: CurrentUser, edge: Edge) -> JSONResponse:
    member_id = _member_id(member_id)
    loaded = await load_view(edge, group_id, [user, member_id])
    refuse(mute_refusal(loaded[1] if loaded else None, user, member_id))
    assert loaded is not None
    until = body.until_ms if body.muted else 0
    answer = {"group_id": group_id, "user_id": member_id, "muted": body.muted, "until_ms": until}
    stored = loaded[1].roles.get(member_id)
    if (stored.muted if stored else False) == body.muted and (stored.muted_until_ms if stored else 0) == until:
        return JSONResponse(answer)
    event = GroupMemberMuted(group_id=group_id, member_id=member_id, muted=body.muted, set_by=user, until_ms=until)

    async def applied() -> bool:
        now = (await edge.store.group_roles([(group_id, member_id)])).get((group_id, member_id))
        return (now.muted if now else False) == body.muted and (now.muted_until_ms if now else 0) == until

    return await publish_and_wait(edge, group_id, user, event, applied, answer)


@router.delete("/v1/groups/{group_id}")
async def dissolve(group_id: str, user: CurrentUser, edge: Edge) -> JSONResponse:
    loaded = await load_view(edge, group_id, [user])
    refuse(dissolve_refusal(loaded[1] if loaded else None, user))
    event = GroupDissolved(group_id=group_id, dissolved_by=user)

    async def applied() -> bool:
        now = (await edge.store.group_profiles([group_id])).get(group_id)
        return now is not None and now.dissolved

    return await publish_and_wait(edge, group_id, user, event, applied, {"group_id": group_id, "dissolved": True})
