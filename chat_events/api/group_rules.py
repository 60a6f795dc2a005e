"""Who may run a group (issue 16, item 4): pure decisions, applied by the edge before anything
reaches Kafka and again by the groups stage against the stored group (a change that slipped
past a stale edge, or was published by hand, is dead-lettered there).

Roles: the **owner** (exactly one) does everything: renames, sets roles, transfers ownership,
mutes anyone, dissolves. **Admins** rename and update the group, add and remove plain members,
mute and unmute plain members. **Members** add members and leave. Nobody acts on the owner.
The owner leaves only as the last member (otherwise they transfer ownership or dissolve first).
A dissolved group takes no change at all. Anyone who is not an active member gets
:data:`~chat_events.api.authz.HIDDEN_GROUP`, whether the group exists or not."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from chat_events.api.authz import HIDDEN_GROUP
from chat_events.events.group_events import GroupDissolved, GroupMemberMuted, GroupMemberRoleSet, GroupUpdated
from chat_events.events.types import GroupMemberJoined, GroupMemberLeft
from chat_events.store.group_models import GroupRole

DISSOLVED = "the group is dissolved"
OWNER_ONLY = "only the owner may do this"
ADMINS_ONLY = "only the owner and admins may do this"
NOT_ON_OWNER = "nobody may do this to the owner"
NOT_ON_ADMIN = "only the owner may do this to an admin"
NOT_A_MEMBER = "is not a member of the group"
OWNER_LEAVES = "the owner cannot leave while others remain: transfer ownership or dissolve the group first"
MUTED = "you are muted in this group"

SETTABLE_ROLES = ("admin", "member")
"""What ``PUT .../role`` sets; ``owner`` is the transfer's (``POST .../owner``)."""


@dataclass(frozen=True, slots=True)
class GroupView:
    """What a decision needs of a stored group: its owner, whether it is dissolved, its active
    members, and the role rows of (at least) the users concerned."""

    owner_id: str
    members: frozenset[str]
    dissolved: bool = False
    roles: Mapping[str, GroupRole] = field(default_factory=dict)

    def role_of(self, user_id: str) -> str | None:
        """``owner``, ``admin``, ``member``, or None for someone not an active member."""
        if user_id not in self.members:
            return None
        if user_id == self.owner_id:
            return "owner"
        found = self.roles.get(user_id)
        return found.role if found is not None and found.role in SETTABLE_ROLES else "member"


def _acting(view: GroupView | None, actor: str) -> tuple[GroupView, str] | str:
    if view is None or view.role_of(actor) is None:
        return HIDDEN_GROUP
    if view.dissolved:
        return DISSOLVED
    role = view.role_of(actor)
    assert role is not None
    return view, role


def update_refusal(view: GroupView | None, actor: str) -> str | None:
    """Renaming, a new avatar or description: the owner and admins."""
    acting = _acting(view, actor)
    if isinstance(acting, str):
        return acting
    return None if acting[1] in ("owner", "admin") else ADMINS_ONLY


def role_refusal(view: GroupView | None, actor: str, member: str, role: str) -> str | None:
    """Setting ``member``'s role (``admin``/``member``) or transferring ownership (``owner``):
    the owner only, to another active member."""
    acting = _acting(view, actor)
    if isinstance(acting, str):
        return acting
    group, actor_role = acting
    if actor_role != "owner":
        return OWNER_ONLY
    if member == group.owner_id:
        return NOT_ON_OWNER
    if group.role_of(member) is None:
        return f"{member} {NOT_A_MEMBER}"
    return None


def mute_refusal(view: GroupView | None, actor: str, member: str) -> str | None:
    """Muting or unmuting ``member``: the owner anyone but themselves, an admin plain members."""
    acting = _acting(view, actor)
    if isinstance(acting, str):
        return acting
    group, actor_role = acting
    if actor_role not in ("owner", "admin"):
        return ADMINS_ONLY
    subject_role = group.role_of(member)
    if subject_role is None:
        return f"{member} {NOT_A_MEMBER}"
    if subject_role == "owner":
        return NOT_ON_OWNER
    if subject_role == "admin" and actor_role != "owner":
        return NOT_ON_ADMIN
    return None


def dissolve_refusal(view: GroupView | None, actor: str) -> str | None:
    acting = _acting(view, actor)
    if isinstance(acting, str):
        return acting
    return None if acting[1] == "owner" else OWNER_ONLY


def member_change_refusal(view: GroupView | None, actor: str, subject: str, *, adding: bool) -> str | None:
    """Adding (any member adds), leaving (``subject == actor``; the owner only as the last
    member) and removing (the owner removes anyone, an admin plain members)."""
    acting = _acting(view, actor)
    if isinstance(acting, str):
        return acting
    group, actor_role = acting
    if adding:
        return None
    if subject == actor:
        return OWNER_LEAVES if actor_role == "owner" and len(group.members) > 1 else None
    subject_role = group.role_of(subject)
    if subject_role is None:
        return None  # not a member: removing changes nothing
    if subject_role == "owner":
        return NOT_ON_OWNER
    if actor_role == "owner" or (actor_role == "admin" and subject_role == "member"):
        return None
    return NOT_ON_ADMIN if subject_role == "admin" else ADMINS_ONLY


AdminEvent = GroupUpdated | GroupMemberRoleSet | GroupMemberMuted | GroupDissolved | GroupMemberJoined | GroupMemberLeft


def event_refusal(event: AdminEvent, view: GroupView | None) -> str | None:
    """Why the groups stage must not apply ``event`` to the stored group, or None. A join with
    no ``added_by`` is the member's own (as the edge never publishes one, only a hand-made event
    does that); it is refused only for a missing or dissolved group."""
    if isinstance(event, GroupUpdated):
        return update_refusal(view, event.updated_by)
    if isinstance(event, GroupMemberRoleSet):
        return role_refusal(view, event.set_by, event.member_id, event.role)
    if isinstance(event, GroupMemberMuted):
        return mute_refusal(view, event.set_by, event.member_id)
    if isinstance(event, GroupDissolved):
        return dissolve_refusal(view, event.dissolved_by)
    if isinstance(event, GroupMemberJoined):
        if event.added_by is None or event.added_by == event.member_id:
            return HIDDEN_GROUP if view is None else (DISSOLVED if view.dissolved else None)
        return member_change_refusal(view, event.added_by, event.member_id, adding=True)
    actor = event.removed_by or event.member_id
    return member_change_refusal(view, actor, event.member_id, adding=False)


def send_muted(role: GroupRole | None, now_ms: int) -> bool:
    """Whether a member with this role row may not post now (a mute with ``until_ms`` ends by itself)."""
    return role is not None and role.muted_at(now_ms)
