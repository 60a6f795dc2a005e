"""Who blocks a sender, as an edge sees it for ``room_message`` pushes: read from the store,
trusted for ``CHAT_MEMBERSHIP_CACHE_S`` (like group member lists). A push is decided without
IO, so the delivery loop loads a sender's entry (:meth:`BlockerCache.load`) before it pushes
(:meth:`BlockerCache.blockers`). A block made on this edge forgets its entry at once; one made
on another edge is seen here within the cache time."""

from __future__ import annotations

import time
from collections.abc import Callable

from chat_events.store.port import MessageStore

MAX_ENTRIES = 100_000


class BlockerCache:
    def __init__(self, store: MessageStore, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def load(self, sender_id: str) -> frozenset[str]:
        """The users who block ``sender_id``, from the store unless read within the cache time."""
        now = self._clock()
        hit = self._cache.get(sender_id)
        if hit is not None and now - hit[0] < self._ttl_s:
            return hit[1]
        found = (await self._store.blockers_of([sender_id])).get(sender_id, frozenset())
        if len(self._cache) >= MAX_ENTRIES:
            self._cache.clear()
        self._cache[sender_id] = (now, found)
        return found

    def blockers(self, sender_id: str) -> frozenset[str]:
        """What :meth:`load` last read for ``sender_id`` (empty if never loaded)."""
        hit = self._cache.get(sender_id)
        return hit[1] if hit is not None else frozenset()

    def forget(self, sender_id: str) -> None:
        self._cache.pop(sender_id, None)
