"""Groups, blocks, sessions and rate-limit accounting of the Cassandra store (a mixin of
:class:`~chat_events.store.cassandra.CassandraStore`, split out to keep modules small).

Status rows (membership, blocks) are "last writer by ``at_ms`` wins": the stored
``updated_at_ms`` is read and the write skipped when it is older, exactly the embedded store's
``WHERE excluded.updated_at_ms >= updated_at_ms``; the one writer per key the port promises
makes the read-then-write safe. (``USING TIMESTAMP at_ms`` would avoid the read, but Cassandra
breaks timestamp ties by value, not by arrival, so equal ``at_ms`` would behave differently.)
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping

from chat_events.store import cassandra_rows as rows
from chat_events.store.cassandra_driver import CqlSession
from chat_events.store.cassandra_plan import Write, pack
from chat_events.store.models import Group, Session

EDGE_REFRESH_S = 3600.0
"""How often one process rewrites an edge's ``session_edges`` row (it is a single partition:
writing it on every connect would make it hot)."""


class SocialTables:
    """The non-message half of the port, on the tables of ``schemas/cassandra.cql``."""

    _db: CqlSession
    _edges_registered: dict[str, float]
    """edge id -> monotonic time this process last wrote its ``session_edges`` row."""

    # --- groups ---------------------------------------------------------------------------

    async def save_group(self, group: Group, member_ids: Iterable[str]) -> None:
        """Create the group and add the members it does not have yet; a re-save changes nothing
        that is stored (a member who left stays left). The group row goes in the last batch,
        so a visible group has all its initial members."""
        members = list(dict.fromkeys(member_ids))
        stored = await self.get_group(group.group_id)
        present = {r["user_id"] for r in await self._db.rows("members_in", [group.group_id])}
        units: list[list[Write]] = [
            [
                ("member_set", (group.group_id, user_id, True, group.created_at_ms)),
                ("user_group_set", (user_id, group.group_id, True, group.created_at_ms)),
            ]
            for user_id in members
            if user_id not in present
        ]
        if stored is None:
            units.append([("group_insert", (group.group_id, group.name, group.owner_id, group.created_at_ms))])
        for batch in pack(units):  # in order: the group row last
            await self._db.batch(batch)

    async def get_group(self, group_id: str) -> Group | None:
        found = await self._db.rows("group_get", group_id)
        return rows.group_from_row(found[0]) if found else None

    async def set_group_member(self, group_id: str, user_id: str, *, active: bool, at_ms: int) -> None:
        if await self._is_newer("member_get", (group_id, user_id), at_ms):  # and "my groups" (cassandra_groups.py)
            writes = [
                ("member_set", (group_id, user_id, active, at_ms)),
                ("user_group_set", (user_id, group_id, active, at_ms)),
            ]
            await self._db.batch(writes)

    async def group_members(self, group_ids: Iterable[str]) -> dict[str, frozenset[str]]:
        members: dict[str, set[str]] = {i: set() for i in group_ids}
        for r in await self._db.lookup("members_in", {(): members}):
            if r["active"]:
                members[r["group_id"]].add(r["user_id"])
        return {i: frozenset(m) for i, m in members.items()}

    # --- blocks ---------------------------------------------------------------------------

    async def set_block(self, blocker_id: str, blocked_id: str, *, active: bool, at_ms: int) -> None:
        if await self._is_newer("block_get", (blocker_id, blocked_id), at_ms):
            await self._db.batch(
                [
                    ("block_set", (blocker_id, blocked_id, active, at_ms)),
                    ("blocked_by_set", (blocked_id, blocker_id, active, at_ms)),
                ]
            )

    async def blockers_of(self, user_ids: Iterable[str]) -> dict[str, frozenset[str]]:
        blockers: dict[str, set[str]] = {i: set() for i in user_ids}
        for r in await self._db.lookup("blockers_in", {(): blockers}):
            if r["active"]:
                blockers[r["blocked_id"]].add(r["blocker_id"])
        return {i: frozenset(b) for i, b in blockers.items()}

    async def blocks_by(self, blocker_id: str) -> dict[str, int]:
        found = await self._db.rows("blocks_by", blocker_id)
        return {r["blocked_id"]: r["updated_at_ms"] for r in found if r["active"]}

    async def _is_newer(self, statement: str, key: tuple[str, str], at_ms: int) -> bool:
        found = await self._db.rows(statement, *key)
        stored = found[0]["updated_at_ms"] if found else None
        return stored is None or at_ms >= stored

    # --- sessions -------------------------------------------------------------------------

    async def save_session(self, session: Session) -> None:
        """Upsert (user and edge rows in one batch, with the session TTL). A replayed connect
        older than the session's recorded end does not resurrect it; a session that moved to
        another edge is marked inactive on the old one."""
        found = await self._db.rows("session_get", session.user_id, session.session_id)
        writes = rows.session_writes(session, active=True, ended_at_ms=None)
        if found:
            ended = rows.ended_at(found[0])
            if ended is not None and ended >= session.since_ms:
                return
            old = rows.session_from_row(found[0])
            if old.edge_id != session.edge_id:
                writes += rows.session_writes(old, active=False, ended_at_ms=None)[1:]
        last = self._edges_registered.get(session.edge_id)
        register = last is None or time.monotonic() - last > EDGE_REFRESH_S
        if register:
            writes.append(
                (
                    "edge_register",
                    (rows.EDGE_DIRECTORY_SHARD, session.edge_id, session.since_ms, rows.EDGE_DIRECTORY_TTL_S),
                )
            )
        await self._db.batch(writes)
        if register:
            self._edges_registered[session.edge_id] = time.monotonic()

    async def end_session(self, user_id: str, session_id: str, *, at_ms: int) -> None:
        """Mark the session ended (a status update; the rows then age out with their TTL).
        An end older than the session's start is ignored."""
        found = await self._db.rows("session_get", user_id, session_id)
        if not found:
            return
        session = rows.session_from_row(found[0])
        if session.since_ms <= at_ms:
            await self._db.batch(rows.session_writes(session, active=False, ended_at_ms=at_ms))

    async def sessions_of(self, user_ids: Iterable[str]) -> dict[str, tuple[Session, ...]]:
        active: dict[str, list[Session]] = {i: [] for i in user_ids}
        for r in await self._db.lookup("sessions_of_users", {(): active}):
            if r["active"]:
                active[r["user_id"]].append(rows.session_from_row(r))
        return {i: tuple(sorted(found, key=lambda s: (s.since_ms, s.session_id))) for i, found in active.items()}

    async def sessions_on_edge(self, edge_id: str) -> list[Session]:
        found = [r for r in await self._db.rows("sessions_on_edge", edge_id) if r["active"]]
        sessions = [rows.session_from_row({**r, "edge_id": edge_id}) for r in found]
        return sorted(sessions, key=lambda s: (s.user_id, s.since_ms, s.session_id))

    async def active_edge_ids(self) -> list[str]:
        """See the port: the edges of ``session_edges`` that still hold an active session (one
        ``LIMIT 1`` probe per edge, filtered inside that edge's partition only)."""
        edges = [r["edge_id"] for r in await self._db.rows("edges_get", rows.EDGE_DIRECTORY_SHARD)]
        probes = await self._db.each("edge_has_active", [(edge, True) for edge in edges])
        return sorted(edge for edge, found in zip(edges, probes, strict=True) if found)

    # --- rate limits ----------------------------------------------------------------------

    async def record_rate_limited(self, user_id: str, window_start_ms: int, event_id: str, action: str) -> None:
        await self._db.rows("rate_insert", user_id, window_start_ms, event_id, action)

    async def rate_limited_counts(self, user_id: str, since_ms: int = 0) -> Mapping[int, int]:
        found = await self._db.rows("rate_since", user_id, since_ms)
        return dict(sorted(Counter(r["window_start_ms"] for r in found).items()))
