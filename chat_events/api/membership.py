"""Group member lists as the edge sees them: read from the store, trusted for a short time.

Each edge has its own cache and only the edge that served a membership change forgets its
entry at once, so another edge may hold a list up to ``CHAT_MEMBERSHIP_CACHE_S`` old. A list
is trusted to *admit* someone for that long (the fan-out stage checks every post again), but
never to *refuse* the acting user: a cached answer without them is read again first, so a
member just added (or the creator of a group just made) is let in at once on every edge.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from chat_events.store.port import MessageStore


def cached_answer_serves(members: frozenset[str] | None, including: str | None) -> bool:
    """Whether a cached member list may answer a lookup for the acting user ``including``
    (None: any answer serves): only when it admits them (the group exists and they are in it)."""
    return including is None or (members is not None and including in members)


class MembershipCache:
    def __init__(self, store: MessageStore, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, frozenset[str] | None]] = {}

    async def members(self, group_id: str, *, including: str | None = None) -> frozenset[str] | None:
        """Active members of ``group_id``, or None if there is no such group.

        ``including`` is the acting user: a cached answer that would refuse them is not used
        (see :func:`cached_answer_serves`); the store is read again.
        """
        now = self._clock()
        hit = self._cache.get(group_id)
        if hit is not None and now - hit[0] < self._ttl_s and cached_answer_serves(hit[1], including):
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
