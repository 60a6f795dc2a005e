"""What the store keeps about group administration (issue 16, item 4): a group's profile, its
members' roles and mutes, and the views read from them ("my groups", a group's member page).

The owner is the profile's ``owner_id``; a role row says ``admin`` or ``member`` (a member
without a row is a plain member), so transferring ownership is one profile write plus the
previous owner's role row (``admin``)."""

from __future__ import annotations

from dataclasses import dataclass

MY_GROUP_SORTS = ("joined", "created", "name")
"""How "my groups" may be ordered (Netalo's ``sort_by``): ``joined`` (when I last joined, newest
first), ``created`` (the group's creation, newest first), ``name`` (case-insensitive, A to Z)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupProfile:
    """A group's settings. Last writer by ``updated_at_ms`` wins (a replayed older change is a
    no-op); ``dissolved`` groups take no posts and leave their members' "my groups"."""

    group_id: str
    name: str
    owner_id: str
    created_at_ms: int
    avatar_url: str = ""
    description: str = ""
    dissolved: bool = False
    updated_at_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupRole:
    """One member's role (``admin`` or ``member``; the owner is the profile's) and mute in a
    group. ``muted`` with ``muted_until_ms`` 0: until unmuted; otherwise until that time. Last
    writer by ``at_ms`` wins."""

    group_id: str
    user_id: str
    role: str = "member"
    muted: bool = False
    muted_until_ms: int = 0
    at_ms: int = 0

    def muted_at(self, now_ms: int) -> bool:
        """Whether the member may not post at ``now_ms``."""
        return self.muted and (self.muted_until_ms == 0 or now_ms < self.muted_until_ms)


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupMember:
    """A row of a group's member page: an active member with their role (``owner``, ``admin``,
    ``member``), when they (last) joined, and their mute."""

    user_id: str
    role: str
    joined_at_ms: int
    muted: bool = False
    muted_until_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class MyGroup:
    """A row of "my groups": a group the user is an active member of, not dissolved."""

    group_id: str
    name: str
    avatar_url: str
    owner_id: str
    created_at_ms: int
    joined_at_ms: int
    role: str
