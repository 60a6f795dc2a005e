"""Group administration in the embedded store (issue 16, item 4; a mixin of
:class:`~chat_events.store.embedded.EmbeddedStore`; the ``group_profiles`` and ``group_roles``
tables are in ``sqlite_schema.py``). Last writer by time wins on both (``WHERE excluded.t >=
stored.t``), so a replay or an older change is a no-op. Paging is
:mod:`chat_events.store.group_pages`'s, as in the Cassandra adapter."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from chat_events.store.group_models import GroupMember, GroupProfile, GroupRole, MyGroup
from chat_events.store.group_pages import member_page, my_group_row, my_groups_page
from chat_events.store.models import Page

R = TypeVar("R")

_PROFILE_COLS = "group_id, name, owner_id, created_at_ms, avatar_url, description, dissolved, updated_at_ms"
_UPSERT_PROFILE = f"""INSERT INTO group_profiles ({_PROFILE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (group_id) DO UPDATE SET name = excluded.name, owner_id = excluded.owner_id,
avatar_url = excluded.avatar_url, description = excluded.description, dissolved = excluded.dissolved,
updated_at_ms = excluded.updated_at_ms
WHERE excluded.updated_at_ms >= group_profiles.updated_at_ms"""
_ROLE_COLS = "group_id, user_id, role, muted, muted_until_ms, updated_at_ms"
_UPSERT_ROLE = f"""INSERT INTO group_roles ({_ROLE_COLS}) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (group_id, user_id) DO UPDATE SET role = excluded.role, muted = excluded.muted,
muted_until_ms = excluded.muted_until_ms, updated_at_ms = excluded.updated_at_ms
WHERE excluded.updated_at_ms >= group_roles.updated_at_ms"""


def _profile(r: Sequence[Any]) -> GroupProfile:
    return GroupProfile(
        group_id=r[0],
        name=r[1],
        owner_id=r[2],
        created_at_ms=r[3],
        avatar_url=r[4],
        description=r[5],
        dissolved=bool(r[6]),
        updated_at_ms=r[7],
    )


def _role(r: Sequence[Any]) -> GroupRole:
    return GroupRole(group_id=r[0], user_id=r[1], role=r[2], muted=bool(r[3]), muted_until_ms=r[4], at_ms=r[5])


class EmbeddedGroupRows:
    if TYPE_CHECKING:  # EmbeddedStore's plumbing

        @property
        def _conn(self) -> sqlite3.Connection: ...

        async def _run(self, fn: Callable[[], R]) -> R: ...

        def _write(self, fn: Callable[[sqlite3.Connection], R]) -> Callable[[], R]: ...

        def _select(self, sql: str, keys: Any, suffix: str = "") -> list[tuple[Any, ...]]: ...

        def _select_pairs(
            self, cols: str, table: str, a: str, b: str, keys: Sequence[tuple[str, str]]
        ) -> list[tuple[Any, ...]]: ...

    async def save_group_profiles(self, profiles: Sequence[GroupProfile]) -> None:
        values = [
            (p.group_id, p.name, p.owner_id, p.created_at_ms, p.avatar_url, p.description, p.dissolved, p.updated_at_ms)
            for p in profiles
        ]
        if values:
            await self._run(self._write(lambda db: db.executemany(_UPSERT_PROFILE, values)))

    async def group_profiles(self, group_ids: Iterable[str]) -> dict[str, GroupProfile]:
        ids = list(dict.fromkeys(group_ids))
        if not ids:
            return {}

        def read() -> dict[str, GroupProfile]:
            found = {
                r[0]: _profile(r)
                for r in self._select(f"SELECT {_PROFILE_COLS} FROM group_profiles WHERE group_id IN ({{}})", ids)
            }
            missing = [i for i in ids if i not in found]
            sql = "SELECT group_id, name, owner_id, created_at_ms FROM groups WHERE group_id IN ({})"
            for r in self._select(sql, missing) if missing else []:
                found[r[0]] = GroupProfile(
                    group_id=r[0], name=r[1], owner_id=r[2], created_at_ms=r[3], updated_at_ms=r[3]
                )
            return found

        return await self._run(read)

    async def set_group_roles(self, roles: Sequence[GroupRole]) -> None:
        values = [(r.group_id, r.user_id, r.role, r.muted, r.muted_until_ms, r.at_ms) for r in roles]
        if values:
            await self._run(self._write(lambda db: db.executemany(_UPSERT_ROLE, values)))

    async def group_roles(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], GroupRole]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        found = await self._run(lambda: self._select_pairs(_ROLE_COLS, "group_roles", "group_id", "user_id", wanted))
        return {(r[0], r[1]): _role(r) for r in found}

    async def group_member_states(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[bool, int]]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        cols = "group_id, user_id, active, updated_at_ms"
        found = await self._run(lambda: self._select_pairs(cols, "group_members", "group_id", "user_id", wanted))
        return {(r[0], r[1]): (bool(r[2]), r[3]) for r in found}

    async def my_groups(
        self, user_id: str, *, sort_by: str = "joined", cursor: str | None = None, limit: int = 50
    ) -> Page[MyGroup]:
        sql = "SELECT group_id, updated_at_ms FROM group_members WHERE user_id = ? AND active = 1"
        joined = dict(await self._run(lambda: self._conn.execute(sql, (user_id,)).fetchall()))
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
        sql = "SELECT user_id, updated_at_ms FROM group_members WHERE group_id = ? AND active = 1"
        joined = dict(await self._run(lambda: self._conn.execute(sql, (group_id,)).fetchall()))
        sql = f"SELECT {_ROLE_COLS} FROM group_roles WHERE group_id = ?"
        roles = {r[1]: _role(r) for r in await self._run(lambda: self._conn.execute(sql, (group_id,)).fetchall())}
        return member_page(profile, joined, roles, after_user_id=after_user_id, limit=limit)
