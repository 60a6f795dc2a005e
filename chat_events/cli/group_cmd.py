"""``chat-events group``: create, show and change groups over the edge's HTTP API (development mode).

Like ``chat``, it gets a dev token for the acting user (``--owner`` / ``--as``) from the edge
and calls the group routes of docs/protocol.md; nothing is written to Kafka from here, the
edge validates and publishes. Exit 0 on success, 1 when the edge refuses (group exists, not
found, not allowed, unavailable), 2 for invalid input.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from chat_events.api.protocol import Code
from chat_events.cli.chat_cmd import default_url
from chat_events.settings import Settings

if TYPE_CHECKING:
    from chat_events.client import Group, HttpApi

PENDING_NOTE = " (accepted; the workers have not applied it yet: it shows up in a few seconds)"


def register(sub: Any) -> None:
    group = sub.add_parser("group", help="create, show or change a group (over the edge's HTTP API, dev tokens)")
    actions = group.add_subparsers(dest="group_action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a group: the owner and the members are its members")
    create.add_argument("group_id", metavar="ID", help="the group id (what `chat --group ID` takes)")
    create.add_argument("--owner", required=True, metavar="USER", help="who creates and owns it")
    create.add_argument("--members", default="", metavar="A,B,...", help="the other members, comma-separated")
    create.add_argument("--name", default=None, help="display name (default: the id)")
    create.set_defaults(handler=run_create)
    add = actions.add_parser("add", help="add users to a group (any member may)")
    add.add_argument("group_id", metavar="ID")
    add.add_argument("users", nargs="+", metavar="USER", help="users to add")
    add.add_argument("--as", dest="actor", required=True, metavar="USER", help="a member of the group")
    add.set_defaults(handler=run_add)
    remove = actions.add_parser("remove", help="remove users from a group (owner, admins, or a member leaving)")
    remove.add_argument("group_id", metavar="ID")
    remove.add_argument("users", nargs="+", metavar="USER", help="users to remove")
    remove.add_argument(
        "--as", dest="actor", required=True, metavar="USER", help="the owner, an admin, or the user leaving"
    )
    remove.set_defaults(handler=run_remove)
    show = actions.add_parser("show", help="a group's owner and members")
    show.add_argument("group_id", metavar="ID")
    show.add_argument("--as", dest="actor", required=True, metavar="USER", help="a member of the group")
    show.set_defaults(handler=run_show)
    admin = _register_admin(actions)
    for parser in (create, add, remove, show, *admin):
        parser.add_argument(
            "--url", default=None, help="the edge's HTTP address (default http://CHAT_EDGE_HOST:CHAT_EDGE_PORT)"
        )


def _register_admin(actions: Any) -> list[Any]:
    """The administration subcommands (issue 16, item 4): update, role, owner, mute, unmute,
    dissolve, list."""
    update = actions.add_parser("update", help="rename a group or set its avatar or description (owner, admins)")
    update.add_argument("group_id", metavar="ID")
    update.add_argument("--name", default=None)
    update.add_argument("--avatar-url", default=None, metavar="URL")
    update.add_argument("--description", default=None)
    update.set_defaults(
        handler=run_admin,
        admin_call=lambda a, h: h.update_group(
            a.group_id, name=a.name, avatar_url=a.avatar_url, description=a.description
        ),
    )
    role = actions.add_parser("role", help="make a member an admin or a plain member (owner)")
    role.add_argument("group_id", metavar="ID")
    role.add_argument("user", metavar="USER")
    role.add_argument("role", choices=["admin", "member"])
    role.set_defaults(handler=run_admin, admin_call=lambda a, h: h.set_member_role(a.group_id, a.user, a.role))
    owner = actions.add_parser("owner", help="transfer ownership to a member (owner; you become an admin)")
    owner.add_argument("group_id", metavar="ID")
    owner.add_argument("user", metavar="USER")
    owner.set_defaults(handler=run_admin, admin_call=lambda a, h: h.transfer_ownership(a.group_id, a.user))
    mute = actions.add_parser("mute", help="mute a member: they cannot post until unmuted (owner, admins)")
    mute.add_argument("group_id", metavar="ID")
    mute.add_argument("user", metavar="USER")
    mute.add_argument("--until-ms", type=int, default=0, help="when the mute ends by itself (0: until unmuted)")
    mute.set_defaults(handler=run_admin, admin_call=lambda a, h: h.mute_member(a.group_id, a.user, until_ms=a.until_ms))
    unmute = actions.add_parser("unmute", help="unmute a member (owner, admins)")
    unmute.add_argument("group_id", metavar="ID")
    unmute.add_argument("user", metavar="USER")
    unmute.set_defaults(handler=run_admin, admin_call=lambda a, h: h.unmute_member(a.group_id, a.user))
    dissolve = actions.add_parser("dissolve", help="dissolve a group: no more posts (owner)")
    dissolve.add_argument("group_id", metavar="ID")
    dissolve.set_defaults(handler=run_admin, admin_call=lambda a, h: h.dissolve_group(a.group_id))
    mine = actions.add_parser("list", help="the groups a user is a member of")
    mine.add_argument("--sort-by", default="joined", choices=["joined", "created", "name"])
    mine.add_argument("--limit", type=int, default=50)
    mine.set_defaults(
        handler=run_admin, group_id="", admin_call=lambda a, h: h.my_groups(sort_by=a.sort_by, limit=a.limit)
    )
    parsers = [update, role, owner, mute, unmute, dissolve, mine]
    for parser in parsers:
        parser.add_argument("--as", dest="actor", required=True, metavar="USER", help="who does it")
    return parsers


# --- pure decisions -----------------------------------------------------------------------


def parse_members(text: str) -> list[str]:
    """``"bob, carol,,bob"`` -> ``["bob", "carol"]`` (order kept, duplicates and blanks dropped)."""
    return list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


def describe(group: Group) -> str:
    members = ", ".join(group.member_ids)
    return f"group {group.group_id} ({group.name}): owner {group.owner_id}; members {members}"


def refusal(code: int, http_status: int | None, message: str, *, group_id: str, actor: str) -> tuple[int, str]:
    """Exit status and one line for a refused group call."""
    if http_status == 409:
        return 1, f"group {group_id} exists (pick another id, or `chat-events group show {group_id} --as MEMBER`)"
    if code == Code.FORBIDDEN:  # also a missing group: the edge tells outsiders nothing more
        return 1, f"{actor} may not do that in group {group_id}: {message}"
    if code == Code.INVALID_FIELD:
        return 2, f"invalid input: {message}"
    return 1, f"{_code_name(code)} ({code}): {message}"


def _code_name(code: int) -> str:
    try:
        return Code(code).name
    except ValueError:
        return "UNKNOWN"


# --- commands -----------------------------------------------------------------------------


def run_create(args: argparse.Namespace, settings: Settings) -> int:
    async def create(http: HttpApi) -> str:
        group = await http.create_group(args.name or args.group_id, parse_members(args.members), args.group_id)
        return f"created {describe(group)}" + (PENDING_NOTE if group.pending else "")

    return _run(args, settings, args.owner, create)


def run_add(args: argparse.Namespace, settings: Settings) -> int:
    return _run(args, settings, args.actor, _membership(args.group_id, args.users, adding=True))


def run_remove(args: argparse.Namespace, settings: Settings) -> int:
    return _run(args, settings, args.actor, _membership(args.group_id, args.users, adding=False))


def run_show(args: argparse.Namespace, settings: Settings) -> int:
    async def show(http: HttpApi) -> str:
        return describe(await http.get_group(args.group_id))

    return _run(args, settings, args.actor, show)


def admin_line(answer: dict[str, Any]) -> str:
    """One line for an administration answer: the groups of ``list``, or the changed fields."""
    if "groups" in answer:
        rows = [f"{g['group_id']} ({g['name']}): {g['role']}" for g in answer["groups"]]
        return "\n".join(rows) if rows else "no groups"
    note = PENDING_NOTE if answer.get("status") == "pending" else ""
    return ", ".join(f"{k}={v}" for k, v in answer.items() if k != "status") + note


def run_admin(args: argparse.Namespace, settings: Settings) -> int:
    async def call(http: HttpApi) -> str:
        return admin_line(await args.admin_call(args, http))

    return _run(args, settings, args.actor, call)


def _membership(group_id: str, users: list[str], *, adding: bool) -> Callable[[HttpApi], Awaitable[str]]:
    async def change(http: HttpApi) -> str:
        lines = []
        for user in dict.fromkeys(users):
            if adding:
                answer = await http.add_member(group_id, user)
            else:
                answer = await http.remove_member(group_id, user)
            done = "added to" if adding else "removed from"
            note = PENDING_NOTE if answer.get("status") == "pending" else ""
            lines.append(f"{user} {done} group {group_id}{note}")
        return "\n".join(lines)

    return change


def _run(args: argparse.Namespace, settings: Settings, actor: str, call: Callable[[HttpApi], Awaitable[str]]) -> int:
    status, line = asyncio.run(_call(args.url or default_url(settings), actor, args.group_id, call))
    print(line if status == 0 else f"error: {line}", flush=True)
    return status


async def _call(url: str, actor: str, group_id: str, call: Callable[[HttpApi], Awaitable[str]]) -> tuple[int, str]:
    from chat_events.client import ChatError, HttpApi

    async with HttpApi(url) as http:
        try:
            http.token = (await http.dev_token(actor)).token
        except ChatError as exc:
            if exc.code == Code.NOT_FOUND:
                return 1, f"{url} issues no dev tokens (the edge must run with CHAT_ENVIRONMENT=development)"
            if exc.code == Code.INVALID_FIELD:
                return 2, f"invalid user id {actor!r}: {exc.message}"
            return 1, f"cannot get a token for {actor} from {url}: {exc}"
        try:
            return 0, await call(http)
        except ChatError as exc:
            status = exc.data.get("http_status")
            return refusal(
                exc.code, status if isinstance(status, int) else None, exc.message, group_id=group_id, actor=actor
            )
