"""The connection registry of one edge: user -> open sockets, room -> subscribed sockets.

Synapse's ``Notifier`` in miniature. Pure bookkeeping (no IO), so the rules are tested
directly: a device signing in again replaces its older socket (conflict login), and a user
may hold at most ``max_per_user`` sockets on one edge.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from chat_events.api.connection import Connection


@dataclass(frozen=True, slots=True)
class Admission:
    admitted: bool
    replaced: Connection | None = None
    """The same user's same device, signed in earlier on this edge: to be kicked."""


class ConnectionRegistry:
    def __init__(self, max_per_user: int) -> None:
        self._max_per_user = max_per_user
        self._by_user: dict[str, dict[str, Connection]] = {}
        self._by_room: dict[str, set[Connection]] = {}

    def __len__(self) -> int:
        return sum(len(c) for c in self._by_user.values())

    def add(self, conn: Connection) -> Admission:
        sockets = self._by_user.setdefault(conn.user_id, {})
        replaced = next((c for c in sockets.values() if c.device_id == conn.device_id), None)
        if replaced is None and len(sockets) >= self._max_per_user:
            if not sockets:
                del self._by_user[conn.user_id]
            return Admission(False)
        if replaced is not None:
            self.remove(replaced)
            sockets = self._by_user.setdefault(conn.user_id, {})
        sockets[conn.session_id] = conn
        return Admission(True, replaced)

    def remove(self, conn: Connection) -> bool:
        """Forget ``conn``; False if it was not registered (already replaced or removed)."""
        sockets = self._by_user.get(conn.user_id)
        if not sockets or sockets.get(conn.session_id) is not conn:
            return False
        del sockets[conn.session_id]
        if not sockets:
            del self._by_user[conn.user_id]
        self.leave_room(conn)
        return True

    def of_user(self, user_id: str) -> Iterator[Connection]:
        yield from tuple(self._by_user.get(user_id, {}).values())

    def users(self) -> list[str]:
        return list(self._by_user)

    def all(self) -> list[Connection]:
        return [c for sockets in self._by_user.values() for c in sockets.values()]

    def join_room(self, conn: Connection, room_id: str, seq: int) -> None:
        self.leave_room(conn)
        conn.room_id, conn.room_seq = room_id, seq
        self._by_room.setdefault(room_id, set()).add(conn)

    def leave_room(self, conn: Connection) -> None:
        if conn.room_id is None:
            return
        members = self._by_room.get(conn.room_id)
        if members is not None:
            members.discard(conn)
            if not members:
                del self._by_room[conn.room_id]
        conn.room_id = None

    def in_room(self, room_id: str) -> tuple[Connection, ...]:
        return tuple(self._by_room.get(room_id, ()))
