"""Pure paging of the group views, shared by both store adapters so they order and page alike:
a user's groups (:func:`my_groups_page`, by a cursor naming the last row's sort key) and a
group's members (:func:`member_page`, by user id)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, Sequence

from chat_events.store.group_models import MY_GROUP_SORTS, GroupMember, GroupProfile, GroupRole, MyGroup
from chat_events.store.models import Page

SortKey = tuple[int | str, str]


def my_group_sort_key(group: MyGroup, sort_by: str) -> SortKey:
    """Ascending key of a row for ``sort_by`` (:data:`MY_GROUP_SORTS`), the group id breaking ties."""
    if sort_by == "name":
        return (group.name.casefold(), group.group_id)
    if sort_by == "created":
        return (-group.created_at_ms, group.group_id)
    if sort_by == "joined":
        return (-group.joined_at_ms, group.group_id)
    raise ValueError(f"sort_by must be one of {', '.join(MY_GROUP_SORTS)}")


def my_group_cursor(group: MyGroup, sort_by: str) -> str:
    """The cursor that continues a page after ``group`` (opaque to clients)."""
    return base64.urlsafe_b64encode(json.dumps([sort_by, *my_group_sort_key(group, sort_by)]).encode()).decode()


def decode_cursor(cursor: str, sort_by: str) -> SortKey:
    """The sort key a cursor names; :class:`ValueError` for one that is not ours or was made for
    another ``sort_by``."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, UnicodeError):
        raise ValueError("cursor is not one this server gave") from None
    if not (isinstance(raw, list) and len(raw) == 3 and isinstance(raw[2], str)):
        raise ValueError("cursor is not one this server gave")
    if raw[0] != sort_by:
        raise ValueError(f"cursor was made for sort_by={raw[0]}")
    key = raw[1]
    if (sort_by == "name" and not isinstance(key, str)) or (sort_by != "name" and type(key) is not int):
        raise ValueError("cursor is not one this server gave")
    return (key, raw[2])


def my_groups_page(rows: Iterable[MyGroup], *, sort_by: str, cursor: str | None, limit: int) -> Page[MyGroup]:
    """The rows after ``cursor`` in ``sort_by`` order, at most ``limit``."""
    ordered = sorted(rows, key=lambda g: my_group_sort_key(g, sort_by))
    if cursor is not None:
        after = decode_cursor(cursor, sort_by)
        ordered = [g for g in ordered if my_group_sort_key(g, sort_by) > after]
    return Page(tuple(ordered[:limit]), len(ordered) > limit)


def role_of(user_id: str, profile: GroupProfile, roles: Mapping[str, GroupRole]) -> str:
    """A member's role: the profile's owner, else their role row's, else ``member``."""
    if user_id == profile.owner_id:
        return "owner"
    found = roles.get(user_id)
    return found.role if found is not None else "member"


def my_group_row(profile: GroupProfile, joined_at_ms: int, role: GroupRole | None, user_id: str) -> MyGroup:
    return MyGroup(
        group_id=profile.group_id,
        name=profile.name,
        avatar_url=profile.avatar_url,
        owner_id=profile.owner_id,
        created_at_ms=profile.created_at_ms,
        joined_at_ms=joined_at_ms,
        role=role_of(user_id, profile, {user_id: role} if role else {}),
    )


def member_page(
    profile: GroupProfile,
    joined: Mapping[str, int],
    roles: Mapping[str, GroupRole],
    *,
    after_user_id: str | None,
    limit: int,
) -> Page[GroupMember]:
    """The active members (``joined``: user -> when they joined) by user id after
    ``after_user_id``, at most ``limit``, each with role and mute."""
    ids: Sequence[str] = sorted(u for u in joined if after_user_id is None or u > after_user_id)
    items = []
    for user_id in ids[:limit]:
        found = roles.get(user_id)
        items.append(
            GroupMember(
                user_id=user_id,
                role=role_of(user_id, profile, roles),
                joined_at_ms=joined[user_id],
                muted=found.muted if found else False,
                muted_until_ms=found.muted_until_ms if found else 0,
            )
        )
    return Page(tuple(items), len(ids) > limit)
