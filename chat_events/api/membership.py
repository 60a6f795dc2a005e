"""Group member lists as the edge sees them: read from the store, trusted for a short time."""

from __future__ import annotations

import time
from collections.abc import Callable

from chat_events.store.port import MessageStore


class MembershipCache:
    def __init__(self, store: MessageStore, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, frozenset[str] | None]] = {}

    async def members(self, group_id: str) -> frozenset[str] | None:
        """Active members of ``group_id``, or None if there is no such group."""
        now = self._clock()
        hit = self._cache.get(group_id)
        if hit is not None and now - hit[0] < self._ttl_s:
            return hit[1]
        found: frozenset[str] | None
        if await self._store.get_group(group_id) is None:
            found = None
        else:
            found = (await self._store.group_members([group_id])).get(group_id, frozenset())
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[group_id] = (now, found)
        return found

    def forget(self, group_id: str) -> None:
        self._cache.pop(group_id, None)
