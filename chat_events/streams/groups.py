"""Groups stage: ``chat.group-events`` (keyed by group) -> groups, members, profiles and roles in
the store, and a system message per change to ``chat.personal-chat``.

Membership is a status per (group, user) where the latest event time wins, so replays and
out-of-order duplicates leave the same result. The fan-out reads membership from the store.

Administration (issue 16, item 4): each change is checked again against the stored group
(:func:`~chat_events.api.group_rules.event_refusal`); a refused one is dead-lettered (the edge
never publishes it; one made by hand or past a stale edge may arrive). A change whose row
already holds its time or a later one is a replay (or superseded): it is not checked or written
again, but its system message is emitted again, with the same ids (:mod:`group_system`), so a
message the crash lost is sent and one already stored is dropped by persist. One writer per
group (this stage, by partition) makes the read-then-write safe; events of one group in one
batch are applied one after the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from chat_events.api.group_rules import GroupView, event_refusal
from chat_events.errors import EventValidationError
from chat_events.events.group_events import GroupDissolved, GroupMemberMuted, GroupMemberRoleSet, GroupUpdated
from chat_events.events.types import GroupCreated, GroupMemberJoined, GroupMemberLeft
from chat_events.events.validation import validate_envelope
from chat_events.store.group_models import GroupProfile, GroupRole
from chat_events.store.models import Group
from chat_events.store.port import MessageStore
from chat_events.streams.group_system import GroupChange, actor_of, system_message
from chat_events.streams.records import Incoming, Output, Reject, StageResult, timestamp_ms

MAX_PAYLOAD_BYTES = 64 * 1024
"""Bound for the envelope check (group events carry no message payload)."""


def _subject(event: GroupChange) -> str | None:
    if isinstance(event, GroupMemberJoined | GroupMemberLeft | GroupMemberRoleSet | GroupMemberMuted):
        return event.member_id
    return None


def already_applied(
    event: GroupChange,
    at_ms: int,
    profile: GroupProfile | None,
    member_state: tuple[bool, int] | None,
    role: GroupRole | None,
) -> bool:
    """Whether the stored group already holds ``event`` (or a change at least as recent on the
    same row): a replay, to be announced again but not applied (module docstring)."""
    if isinstance(event, GroupMemberJoined | GroupMemberLeft):
        return member_state is not None and member_state[1] >= at_ms
    if profile is None:
        return False
    if isinstance(event, GroupUpdated | GroupDissolved) or (
        isinstance(event, GroupMemberRoleSet) and event.role == "owner"
    ):
        return profile.updated_at_ms >= at_ms and (profile.dissolved or not isinstance(event, GroupDissolved))
    if isinstance(event, GroupMemberRoleSet | GroupMemberMuted):
        return role is not None and role.at_ms >= at_ms
    return False


class GroupsStage:
    name = "groups"
    accepts = frozenset(
        {
            GroupCreated.EVENT_NAME,
            GroupMemberJoined.EVENT_NAME,
            GroupMemberLeft.EVENT_NAME,
            GroupUpdated.EVENT_NAME,
            GroupMemberRoleSet.EVENT_NAME,
            GroupMemberMuted.EVENT_NAME,
            GroupDissolved.EVENT_NAME,
        }
    )

    def __init__(self, store: MessageStore, *, chat_topic: str = "chat.personal-chat") -> None:
        self._store = store
        self._chat_topic = chat_topic

    def reset(self) -> None:
        """Stateless."""

    async def handle(self, batch: Sequence[Incoming]) -> StageResult:
        result = StageResult()
        for item in batch:
            try:
                validate_envelope(item.envelope, max_payload_bytes=MAX_PAYLOAD_BYTES)
            except EventValidationError as exc:
                result.rejects.append(Reject(item.record, exc.code, str(exc)))
                continue
            event = item.envelope.payload
            assert isinstance(
                event,
                GroupCreated
                | GroupMemberJoined
                | GroupMemberLeft
                | GroupUpdated
                | GroupMemberRoleSet
                | GroupMemberMuted
                | GroupDissolved,
            )
            await self._apply(item, event, result)
        return result

    async def _apply(self, item: Incoming, event: GroupChange, result: StageResult) -> None:
        at_ms = timestamp_ms(item.envelope.timestamp)
        if isinstance(event, GroupCreated):
            group = Group(group_id=event.group_id, name=event.name, owner_id=event.owner_id, created_at_ms=at_ms)
            await self._store.save_group(group, (event.owner_id, *event.member_ids))
            created = GroupProfile(
                group_id=event.group_id,
                name=event.name,
                owner_id=event.owner_id,
                created_at_ms=at_ms,
                avatar_url=event.avatar_url,
                description=event.description,
                updated_at_ms=at_ms,
            )
            await self._store.save_group_profiles([created])  # a replay after later changes: older, a no-op
            result.outputs.append(self._announce(item, event))
            return
        group_id, subject = event.group_id, _subject(event)
        profile = (await self._store.group_profiles([group_id])).get(group_id)
        actor = actor_of(event)
        users = {actor} | ({subject} if subject else set())
        members = (await self._store.group_members([group_id])).get(group_id, frozenset())
        roles = await self._store.group_roles((group_id, u) for u in users)
        states = await self._store.group_member_states([(group_id, subject)]) if subject else {}
        role = roles.get((group_id, subject)) if subject else None
        if already_applied(event, at_ms, profile, states.get((group_id, subject or "")), role):
            result.outputs.append(self._announce(item, event))
            return
        view = None
        if profile is not None:
            view = GroupView(profile.owner_id, members, profile.dissolved, {u: r for (_, u), r in roles.items()})
        refusal = event_refusal(event, view)
        if refusal is not None:
            result.rejects.append(Reject(item.record, "not_permitted", f"{event.EVENT_NAME} by {actor}: {refusal}"))
            return
        assert profile is not None
        await self._write(event, at_ms, profile, role)
        result.outputs.append(self._announce(item, event))

    async def _write(self, event: GroupChange, at_ms: int, profile: GroupProfile, role: GroupRole | None) -> None:
        store, group_id = self._store, profile.group_id
        current = role or GroupRole(group_id=group_id, user_id=_subject(event) or "")
        if isinstance(event, GroupMemberJoined):
            await store.set_group_member(group_id, event.member_id, active=True, at_ms=at_ms)
        elif isinstance(event, GroupMemberLeft):  # leaving ends a role and a mute: a rejoin starts afresh
            await store.set_group_member(group_id, event.member_id, active=False, at_ms=at_ms)
            await store.set_group_roles([GroupRole(group_id=group_id, user_id=event.member_id, at_ms=at_ms)])
        elif isinstance(event, GroupUpdated):
            await store.save_group_profiles(
                [
                    replace(
                        profile,
                        name=profile.name if event.name is None else event.name,
                        avatar_url=profile.avatar_url if event.avatar_url is None else event.avatar_url,
                        description=profile.description if event.description is None else event.description,
                        updated_at_ms=at_ms,
                    )
                ]
            )
        elif isinstance(event, GroupDissolved):
            await store.save_group_profiles([replace(profile, dissolved=True, updated_at_ms=at_ms)])
        elif isinstance(event, GroupMemberRoleSet) and event.role == "owner":  # the previous owner becomes an admin
            await store.set_group_roles(
                [
                    GroupRole(group_id=group_id, user_id=profile.owner_id, role="admin", at_ms=at_ms),
                    replace(current, role="member", muted=False, muted_until_ms=0, at_ms=at_ms),
                ]
            )
            await store.save_group_profiles([replace(profile, owner_id=event.member_id, updated_at_ms=at_ms)])
        elif isinstance(event, GroupMemberRoleSet):
            await store.set_group_roles([replace(current, role=event.role, at_ms=at_ms)])
        elif isinstance(event, GroupMemberMuted):
            until = event.until_ms if event.muted else 0
            await store.set_group_roles([replace(current, muted=event.muted, muted_until_ms=until, at_ms=at_ms)])

    def _announce(self, item: Incoming, event: GroupChange) -> Output:
        return system_message(item.envelope, event, topic=self._chat_topic, stage=self.name)
