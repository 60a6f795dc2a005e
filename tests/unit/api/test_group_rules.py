"""Who may run a group (api/group_rules.py), decided without IO; the groups stage and the edge
both apply these."""

from __future__ import annotations

import pytest

from chat_events.api.authz import HIDDEN_GROUP
from chat_events.api.group_rules import (
    ADMINS_ONLY,
    DISSOLVED,
    NOT_ON_ADMIN,
    NOT_ON_OWNER,
    OWNER_LEAVES,
    OWNER_ONLY,
    GroupView,
    dissolve_refusal,
    event_refusal,
    member_change_refusal,
    mute_refusal,
    role_refusal,
    send_muted,
    update_refusal,
)
from chat_events.events.group_events import GroupDissolved, GroupMemberMuted, GroupMemberRoleSet, GroupUpdated
from chat_events.events.types import GroupMemberJoined, GroupMemberLeft
from chat_events.store.group_models import GroupRole

ADMIN = GroupRole(group_id="g", user_id="ann", role="admin")
VIEW = GroupView("owen", frozenset({"owen", "ann", "bob", "cat"}), roles={"ann": ADMIN})
GONE = GroupView("owen", VIEW.members, dissolved=True, roles={"ann": ADMIN})


def test_roles_come_from_the_owner_and_the_role_rows() -> None:
    assert [VIEW.role_of(u) for u in ("owen", "ann", "bob", "zed")] == ["owner", "admin", "member", None]


@pytest.mark.parametrize(
    ("actor", "expected"),
    [("owen", None), ("ann", None), ("bob", ADMINS_ONLY), ("zed", HIDDEN_GROUP)],
)
def test_owner_and_admins_update_the_group(actor: str, expected: str | None) -> None:
    assert update_refusal(VIEW, actor) == expected


def test_nobody_changes_a_missing_or_dissolved_group() -> None:
    assert update_refusal(None, "owen") == HIDDEN_GROUP
    assert update_refusal(GONE, "owen") == DISSOLVED
    assert dissolve_refusal(GONE, "owen") == DISSOLVED
    assert mute_refusal(GONE, "owen", "bob") == DISSOLVED
    assert member_change_refusal(GONE, "bob", "zed", adding=True) == DISSOLVED
    assert update_refusal(GONE, "zed") == HIDDEN_GROUP  # an outsider learns nothing more


@pytest.mark.parametrize(
    ("actor", "member", "role", "expected"),
    [
        ("owen", "bob", "admin", None),
        ("owen", "ann", "member", None),
        ("owen", "bob", "owner", None),  # transfer
        ("ann", "bob", "admin", OWNER_ONLY),  # admins do not make admins
        ("ann", "bob", "owner", OWNER_ONLY),
        ("bob", "bob", "admin", OWNER_ONLY),
        ("owen", "owen", "member", NOT_ON_OWNER),
        ("owen", "zed", "admin", "zed is not a member of the group"),
        ("zed", "bob", "admin", HIDDEN_GROUP),
    ],
)
def test_only_the_owner_sets_roles_and_transfers(actor: str, member: str, role: str, expected: str | None) -> None:
    assert role_refusal(VIEW, actor, member, role) == expected


@pytest.mark.parametrize(
    ("actor", "member", "expected"),
    [
        ("owen", "bob", None),
        ("owen", "ann", None),  # the owner mutes an admin
        ("ann", "bob", None),
        ("ann", "ann", NOT_ON_ADMIN),
        ("ann", "owen", NOT_ON_OWNER),
        ("bob", "cat", ADMINS_ONLY),
        ("owen", "zed", "zed is not a member of the group"),
    ],
)
def test_owner_and_admins_mute(actor: str, member: str, expected: str | None) -> None:
    assert mute_refusal(VIEW, actor, member) == expected


@pytest.mark.parametrize(
    ("actor", "subject", "adding", "expected"),
    [
        ("bob", "zed", True, None),  # members add members
        ("zed", "bob", True, HIDDEN_GROUP),
        ("bob", "bob", False, None),  # leaving
        ("owen", "owen", False, OWNER_LEAVES),
        ("owen", "ann", False, None),
        ("ann", "bob", False, None),  # an admin removes a member
        ("ann", "owen", False, NOT_ON_OWNER),
        ("bob", "cat", False, ADMINS_ONLY),
        ("ann", "zed", False, None),  # not a member: nothing to refuse (nothing is published)
    ],
)
def test_member_changes(actor: str, subject: str, adding: bool, expected: str | None) -> None:
    assert member_change_refusal(VIEW, actor, subject, adding=adding) == expected


def test_an_admin_does_not_remove_another_admin() -> None:
    bob = GroupRole(group_id="g", user_id="bob", role="admin")
    two = GroupView("owen", VIEW.members, roles={"ann": ADMIN, "bob": bob})
    assert member_change_refusal(two, "ann", "bob", adding=False) == NOT_ON_ADMIN


def test_the_owner_leaves_as_the_last_member() -> None:
    assert member_change_refusal(GroupView("owen", frozenset({"owen"})), "owen", "owen", adding=False) is None


def test_only_the_owner_dissolves() -> None:
    assert dissolve_refusal(VIEW, "owen") is None
    assert dissolve_refusal(VIEW, "ann") == OWNER_ONLY


def test_events_are_checked_by_their_actor() -> None:
    assert event_refusal(GroupUpdated(group_id="g", updated_by="bob", name="x"), VIEW) == ADMINS_ONLY
    assert event_refusal(GroupMemberRoleSet(group_id="g", member_id="bob", role="owner", set_by="owen"), VIEW) is None
    assert event_refusal(GroupMemberMuted(group_id="g", member_id="bob", muted=True, set_by="cat"), VIEW) == ADMINS_ONLY
    assert event_refusal(GroupDissolved(group_id="g", dissolved_by="ann"), VIEW) == OWNER_ONLY
    assert event_refusal(GroupMemberJoined(group_id="g", member_id="zed", added_by="bob"), VIEW) is None
    assert event_refusal(GroupMemberJoined(group_id="g", member_id="zed", added_by="yan"), VIEW) == HIDDEN_GROUP
    assert event_refusal(GroupMemberJoined(group_id="g", member_id="zed"), VIEW) is None  # own join
    assert event_refusal(GroupMemberJoined(group_id="g", member_id="zed"), None) == HIDDEN_GROUP
    assert event_refusal(GroupMemberLeft(group_id="g", member_id="cat", removed_by="bob"), VIEW) == ADMINS_ONLY
    assert event_refusal(GroupMemberLeft(group_id="g", member_id="cat"), VIEW) is None
    assert event_refusal(GroupMemberLeft(group_id="g", member_id="owen"), VIEW) == OWNER_LEAVES


def test_a_mute_ends_when_unmuted_or_at_its_time() -> None:
    assert not send_muted(None, 1000)
    assert send_muted(GroupRole(group_id="g", user_id="bob", muted=True), 10**15)
    until = GroupRole(group_id="g", user_id="bob", muted=True, muted_until_ms=2000)
    assert send_muted(until, 1999) and not send_muted(until, 2000)
    assert not send_muted(GroupRole(group_id="g", user_id="bob", muted=False, muted_until_ms=5000), 1000)
