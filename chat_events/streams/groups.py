"""Groups stage: ``chat.group-events`` (keyed by group) -> groups and members in the store.

Membership is a status per (group, user) where the latest event time wins, so replays and
out-of-order duplicates leave the same result. The fan-out reads membership from the store.
"""

from __future__ import annotations

from collections.abc import Sequence

from chat_events.events.types import GroupCreated, GroupMemberJoined, GroupMemberLeft
from chat_events.store.models import Group
from chat_events.store.port import MessageStore
from chat_events.streams.records import Incoming, StageResult, timestamp_ms


class GroupsStage:
    name = "groups"
    accepts = frozenset({GroupCreated.EVENT_NAME, GroupMemberJoined.EVENT_NAME, GroupMemberLeft.EVENT_NAME})

    def __init__(self, store: MessageStore) -> None:
        self._store = store

    def reset(self) -> None:
        """Stateless."""

    async def handle(self, batch: Sequence[Incoming]) -> StageResult:
        for item in batch:
            event, at_ms = item.envelope.payload, timestamp_ms(item.envelope.timestamp)
            if isinstance(event, GroupCreated):
                group = Group(group_id=event.group_id, name=event.name, owner_id=event.owner_id, created_at_ms=at_ms)
                await self._store.save_group(group, (event.owner_id, *event.member_ids))
            elif isinstance(event, GroupMemberJoined):
                await self._store.set_group_member(event.group_id, event.member_id, active=True, at_ms=at_ms)
            elif isinstance(event, GroupMemberLeft):
                await self._store.set_group_member(event.group_id, event.member_id, active=False, at_ms=at_ms)
        return StageResult()
