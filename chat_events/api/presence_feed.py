"""The edge's side of presence pushes (issue 16, item 6): which socket watches whom, and the
``presence`` push of each ``userPresenceChanged`` the edge reads from ``chat.presence``.

Every edge reads every partition of ``chat.presence`` from its end, without a consumer group
(like ``chat.room-messages``): a socket starts from the current presence its
``presence_subscribe`` answer gave, and later changes are pushed. A subscription belongs to one
socket and ends with it; the client subscribes again after a reconnect. Who may watch whom is
decided when subscribing (:mod:`chat_events.api.presence_rules`); blocks are checked again for
each push (:meth:`PresenceFeed.load_blocks`, read before the push, which does no IO).
"""

from __future__ import annotations

from collections.abc import Iterable

from chat_events.api.block_cache import BlockerCache
from chat_events.api.connection import Connection
from chat_events.api.presence_rules import push_excluded, push_view
from chat_events.api.protocol import output_frame
from chat_events.events.types import UserPresenceChanged
from chat_events.store.port import MessageStore


class PresenceFeed:
    """Subscriptions of this edge's sockets: pure bookkeeping plus the push."""

    def __init__(self) -> None:
        self._watchers: dict[str, set[Connection]] = {}
        self._watching: dict[Connection, set[str]] = {}
        self._excluded: dict[str, frozenset[str]] = {}
        """Per watched user, the viewers not told of their next change (loaded before a push)."""

    def watching(self, conn: Connection) -> frozenset[str]:
        return frozenset(self._watching.get(conn, ()))

    def watched(self, user_id: str) -> bool:
        """Whether a socket here watches ``user_id``."""
        return user_id in self._watchers

    def subscribe(self, conn: Connection, user_ids: Iterable[str]) -> None:
        ids = set(user_ids)
        if not ids or conn.closed or conn.close_code is not None:
            return
        self._watching.setdefault(conn, set()).update(ids)
        for user_id in ids:
            self._watchers.setdefault(user_id, set()).add(conn)

    def unsubscribe(self, conn: Connection, user_ids: Iterable[str] | None = None) -> None:
        """Stop ``conn`` watching ``user_ids`` (None: everyone)."""
        watched = self._watching.get(conn)
        if watched is None:
            return
        for user_id in list(watched) if user_ids is None else set(user_ids) & watched:
            watched.discard(user_id)
            watchers = self._watchers.get(user_id)
            if watchers is not None:
                watchers.discard(conn)
                if not watchers:
                    del self._watchers[user_id]
                    self._excluded.pop(user_id, None)
        if not watched:
            del self._watching[conn]

    def drop(self, conn: Connection) -> None:
        """The socket ended: forget its subscriptions."""
        self.unsubscribe(conn, None)

    async def load_blocks(self, store: MessageStore, blockers: BlockerCache, user_id: str) -> None:
        """Read who is not told of ``user_id``'s change, when a socket here watches them."""
        if user_id in self._watchers:
            blocked_by_user = await store.blocks_by(user_id)
            self._excluded[user_id] = push_excluded(blocked_by_user, await blockers.load(user_id))

    def push(self, user_id: str, event: UserPresenceChanged) -> int:
        """Push ``user_id``'s change to every socket watching them (but those excluded by a
        block); returns how many sockets got it."""
        watchers = self._watchers.get(user_id)
        if not watchers:
            return 0
        excluded = self._excluded.get(user_id, frozenset())
        text = output_frame("presence", data=push_view(user_id, event))
        return sum(conn.push(text) for conn in tuple(watchers) if conn.user_id not in excluded)
