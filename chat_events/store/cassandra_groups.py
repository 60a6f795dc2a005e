"""Group administration in the Cassandra store (issue 16, item 4; a mixin of
:class:`~chat_events.store.cassandra.CassandraStore`; tables ``group_profiles``, ``group_roles``
and ``groups_by_user`` of ``schemas/cassandra.cql``). Last writer by time wins, read-then-write
like the other status rows (:mod:`chat_events.store.cassandra_social`): the groups stage is the
one writer per group. ``groups_by_user`` is written with ``group_members`` by
:class:`~chat_events.store.cassandra_social.SocialTables`. "My groups" and member pages read
the user's (group's) partition whole and page it with :mod:`chat_events.store.group_pages`, as
the embedded adapter does."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from chat_events.store.cassandra_async import Row
from chat_events.store.cassandra_driver import CqlSession
from chat_events.store.group_models import GroupMember, GroupProfile, GroupRole, MyGroup
from chat_events.store.group_pages import member_page, my_group_row, my_groups_page
from chat_events.store.models import Page

_PROFILE_COLS = "group_id, name, owner_id, created_at_ms, avatar_url, description, dissolved, updated_at_ms"
_ROLE_COLS = "group_id, user_id, role, muted, muted_until_ms, updated_at_ms"

GROUP_STATEMENTS: dict[str, str] = {
    "profiles_in": f"SELECT {_PROFILE_COLS} FROM group_profiles WHERE group_id IN ?",
    "profile_set": f"INSERT INTO group_profiles ({_PROFILE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    "groups_in": "SELECT group_id, name, owner_id, created_at_ms FROM groups WHERE group_id IN ?",
    "roles_in": f"SELECT {_ROLE_COLS} FROM group_roles WHERE group_id = ? AND user_id IN ?",
    "roles_of": f"SELECT {_ROLE_COLS} FROM group_roles WHERE group_id = ?",
    "role_set": f"INSERT INTO group_roles ({_ROLE_COLS}) VALUES (?, ?, ?, ?, ?, ?)",
    "member_states_in": (
        "SELECT group_id, user_id, active, updated_at_ms FROM group_members WHERE group_id = ? AND user_id IN ?"
    ),
    "members_of": "SELECT user_id, active, updated_at_ms FROM group_members WHERE group_id = ?",
    "user_groups": "SELECT group_id, active, updated_at_ms FROM groups_by_user WHERE user_id = ?",
    "user_group_set": "INSERT INTO groups_by_user (user_id, group_id, active, updated_at_ms) VALUES (?, ?, ?, ?)",
}
"""The statements of this mixin, prepared with the store's."""


def _profile(r: Row) -> GroupProfile:
    return GroupProfile(
        group_id=r["group_id"],
        name=r["name"],
        owner_id=r["owner_id"],
        created_at_ms=r["created_at_ms"],
        avatar_url=r["avatar_url"] or "",
        description=r["description"] or "",
        dissolved=bool(r["dissolved"]),
        updated_at_ms=r["updated_at_ms"] or 0,
    )


def _role(r: Row) -> GroupRole:
    return GroupRole(
        group_id=r["group_id"],
        user_id=r["user_id"],
        role=r["role"],
        muted=bool(r["muted"]),
        muted_until_ms=r["muted_until_ms"] or 0,
        at_ms=r["updated_at_ms"] or 0,
    )


class GroupTables:
    _db: CqlSession

    async def save_group_profiles(self, profiles: Sequence[GroupProfile]) -> None:
        latest: dict[str, GroupProfile] = {}
        for p in profiles:  # several of one group in a call: the last writer by time
            if p.group_id not in latest or p.updated_at_ms >= latest[p.group_id].updated_at_ms:
                latest[p.group_id] = p
        if not latest:
            return
        stored = {r["group_id"]: r["updated_at_ms"] or 0 for r in await self._db.lookup("profiles_in", {(): latest})}
        writes = [
            [
                (
                    "profile_set",
                    (
                        p.group_id,
                        p.name,
                        p.owner_id,
                        p.created_at_ms,
                        p.avatar_url,
                        p.description,
                        p.dissolved,
                        p.updated_at_ms,
                    ),
                )
            ]
            for p in latest.values()
            if p.group_id not in stored or p.updated_at_ms >= stored[p.group_id]
        ]
        await self._db.write_all(writes)

    async def group_profiles(self, group_ids: Iterable[str]) -> dict[str, GroupProfile]:
        ids = list(dict.fromkeys(group_ids))
        if not ids:
            return {}
        found = {r["group_id"]: _profile(r) for r in await self._db.lookup("profiles_in", {(): ids})}
        missing = [i for i in ids if i not in found]
        for r in await self._db.lookup("groups_in", {(): missing}) if missing else []:
            found[r["group_id"]] = GroupProfile(
                group_id=r["group_id"],
                name=r["name"],
                owner_id=r["owner_id"],
                created_at_ms=r["created_at_ms"],
                updated_at_ms=r["created_at_ms"],
            )
        return found

    async def set_group_roles(self, roles: Sequence[GroupRole]) -> None:
        latest: dict[tuple[str, str], GroupRole] = {}
        for r in roles:
            key = (r.group_id, r.user_id)
            if key not in latest or r.at_ms >= latest[key].at_ms:
                latest[key] = r
        if not latest:
            return
        stored = await self.group_roles(latest)
        writes = [
            [("role_set", (r.group_id, r.user_id, r.role, r.muted, r.muted_until_ms, r.at_ms))]
            for key, r in latest.items()
            if key not in stored or r.at_ms >= stored[key].at_ms
        ]
        await self._db.write_all(writes)

    async def group_roles(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], GroupRole]:
        by_group: dict[tuple[str], list[str]] = {}
        for group_id, user_id in keys:
            by_group.setdefault((group_id,), []).append(user_id)
        if not by_group:
            return {}
        return {(r["group_id"], r["user_id"]): _role(r) for r in await self._db.lookup("roles_in", by_group)}

    async def group_member_states(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[bool, int]]:
        by_group: dict[tuple[str], list[str]] = {}
        for group_id, user_id in keys:
            by_group.setdefault((group_id,), []).append(user_id)
        if not by_group:
            return {}
        found = await self._db.lookup("member_states_in", by_group)
        return {(r["group_id"], r["user_id"]): (bool(r["active"]), r["updated_at_ms"]) for r in found}

    async def my_groups(
        self, user_id: str, *, sort_by: str = "joined", cursor: str | None = None, limit: int = 50
    ) -> Page[MyGroup]:
        joined = {r["group_id"]: r["updated_at_ms"] for r in await self._db.rows("user_groups", user_id) if r["active"]}
        profiles = await self.group_profiles(joined)
        roles = await self.group_roles((g, user_id) for g in profiles)
        rows = [
            my_group_row(p, joined[g], roles.get((g, user_id)), user_id) for g, p in profiles.items() if not p.dissolved
        ]
        return my_groups_page(rows, sort_by=sort_by, cursor=cursor, limit=limit)

    async def group_member_page(
        self, group_id: str, *, after_user_id: str | None = None, limit: int = 50
    ) -> Page[GroupMember]:
        profile = (await self.group_profiles([group_id])).get(group_id)
        if profile is None:
            return Page((), False)
        joined = {r["user_id"]: r["updated_at_ms"] for r in await self._db.rows("members_of", group_id) if r["active"]}
        roles = {r["user_id"]: _role(r) for r in await self._db.rows("roles_of", group_id)}
        return member_page(profile, joined, roles, after_user_id=after_user_id, limit=limit)
