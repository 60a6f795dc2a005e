"""``chat-events group``: its pure decisions and its command line."""

from __future__ import annotations

from chat_events.api.protocol import Code
from chat_events.cli.group_cmd import describe, parse_members, refusal
from chat_events.cli.main import build_parser
from chat_events.client import Group


def test_members_are_comma_separated_without_blanks_or_repeats() -> None:
    assert parse_members("bob, carol,,bob ,") == ["bob", "carol"]
    assert parse_members("") == []


def test_describe() -> None:
    group = Group("team", "Team", "alice", ("alice", "bob"))
    assert describe(group) == "group team (Team): owner alice; members alice, bob"


def test_refusals_say_what_happened_and_exit_non_zero() -> None:
    exists = refusal(Code.INVALID_FIELD, 409, "group team exists", group_id="team", actor="alice")
    assert exists[0] == 1 and exists[1].startswith("group team exists")
    hidden = refusal(Code.FORBIDDEN, 403, "no such group, or you are not a member", group_id="team", actor="carol")
    assert hidden == (1, "carol may not do that in group team: no such group, or you are not a member")
    forbidden = refusal(Code.FORBIDDEN, 403, "only members add members", group_id="team", actor="carol")
    assert forbidden == (1, "carol may not do that in group team: only members add members")
    invalid = refusal(Code.INVALID_FIELD, 422, "member_ids.0: bad", group_id="team", actor="alice")
    assert invalid == (2, "invalid input: member_ids.0: bad")
    assert refusal(Code.UNAVAILABLE, 503, "retry", group_id="team", actor="alice") == (1, "UNAVAILABLE (13): retry")


def test_the_commands_are_registered() -> None:
    parser = build_parser()
    create = parser.parse_args(["group", "create", "team", "--owner", "alice", "--members", "bob,carol"])
    assert (create.group_id, create.owner, create.members, create.name, create.url) == (
        "team",
        "alice",
        "bob,carol",
        None,
        None,
    )
    add = parser.parse_args(["group", "add", "team", "dave", "erin", "--as", "bob"])
    assert (add.group_id, add.users, add.actor) == ("team", ["dave", "erin"], "bob")
    show = parser.parse_args(["group", "show", "team", "--as", "bob", "--url", "http://h:1"])
    assert (show.group_id, show.actor, show.url) == ("team", "bob", "http://h:1")
