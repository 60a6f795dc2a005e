"""Group administration events (schema version 7), on ``chat.group-events`` keyed by the group
id and applied by the groups stage in order with the group's other events. Plain dataclasses,
re-exported by :mod:`chat_events.events.types`.

Roles: ``owner`` (exactly one), ``admin``, ``member``. Who may do what is decided by the edge
before publishing and checked again by the groups stage against the stored group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

GROUP_ROLES = frozenset({"owner", "admin", "member"})


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupUpdated:
    """``updated_by`` (an admin or the owner) changed the group's name, avatar or description;
    a field left ``None`` is unchanged."""

    EVENT_NAME: ClassVar[str] = "groupUpdated"
    NAMESPACE: ClassVar[str] = "chat.group"

    group_id: str
    updated_by: str
    name: str | None = None
    avatar_url: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupMemberRoleSet:
    """``set_by`` gave ``member_id`` the role ``role``. ``owner`` transfers ownership (only the
    owner may): the previous owner becomes an admin."""

    EVENT_NAME: ClassVar[str] = "groupMemberRoleSet"
    NAMESPACE: ClassVar[str] = "chat.group"

    group_id: str
    member_id: str
    role: str
    set_by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupMemberMuted:
    """``set_by`` (an admin) muted (``muted``) or unmuted ``member_id`` in the group: a muted
    member cannot post until unmuted, or until ``until_ms`` (0: until unmuted)."""

    EVENT_NAME: ClassVar[str] = "groupMemberMuted"
    NAMESPACE: ClassVar[str] = "chat.group"

    group_id: str
    member_id: str
    muted: bool
    set_by: str
    until_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupDissolved:
    """The owner ``dissolved_by`` dissolved the group: nobody can post in it any more; its history
    stays readable for its last members."""

    EVENT_NAME: ClassVar[str] = "groupDissolved"
    NAMESPACE: ClassVar[str] = "chat.group"

    group_id: str
    dissolved_by: str


GROUP_ADMIN_EVENTS = (GroupUpdated, GroupMemberRoleSet, GroupMemberMuted, GroupDissolved)
