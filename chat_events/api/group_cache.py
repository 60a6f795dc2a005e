"""What an edge needs to admit a group post besides membership (issue 16, item 4): whether the
group is dissolved and whether the sender is muted in it. Read from the store per
``(group, sender)``, trusted for ``CHAT_MEMBERSHIP_CACHE_S`` (1 s by default) like member lists.

So a mute (or a dissolve) made through this edge applies to the next post at once (the change's
route forgets the group's entries when the store shows it), and one made through another edge
within the cache time. A post accepted in that window is delivered: the fan-out does not check
mutes (a mute is a moderation act, not a permission the workers guard), which bounds what a
muted member can still post to about one second's worth of sends."""

from __future__ import annotations

import time
from collections.abc import Callable

from chat_events.store.group_models import GroupRole
from chat_events.store.port import MessageStore

MAX_GROUPS = 100_000


class GroupStateCache:
    def __init__(self, store: MessageStore, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, dict[str, tuple[float, bool, GroupRole | None]]] = {}

    async def state(self, group_id: str, user_id: str) -> tuple[bool, GroupRole | None]:
        """``(dissolved, the user's role row)`` in ``group_id``."""
        now = self._clock()
        entries = self._cache.get(group_id)
        hit = entries.get(user_id) if entries else None
        if hit is not None and now - hit[0] < self._ttl_s:
            return hit[1], hit[2]
        profile = (await self._store.group_profiles([group_id])).get(group_id)
        role = (await self._store.group_roles([(group_id, user_id)])).get((group_id, user_id))
        dissolved = profile is not None and profile.dissolved
        if len(self._cache) >= MAX_GROUPS:
            self._cache.clear()
        self._cache.setdefault(group_id, {})[user_id] = (now, dissolved, role)
        return dissolved, role

    def forget(self, group_id: str) -> None:
        self._cache.pop(group_id, None)
