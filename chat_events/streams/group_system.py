"""System messages of group changes (issue 16, item 4): every membership and settings change the
groups stage applies appears in the group's conversation as a ``personalChatSent`` of
``kind="system"`` (gim's sender type "system"), so every member sees "alice added bob" in order
with the messages. Pure: the stage returns these as outputs to ``chat.personal-chat`` (keyed
by the group id), where persist stores them and the fan-out delivers them.

The message id is a uuid5 of the source envelope id and the envelope id is
:func:`~chat_events.streams.records.output_envelope_id`'s, so a replayed change yields the same
message and persist stores it once. The payload is compact JSON (``docs/protocol.md``, "System
messages"): ``{"event": <the change's event name>, "actor": <who did it>, ...}``."""

from __future__ import annotations

import json
import uuid
from typing import Any

from chat_events.events.factory import new_envelope
from chat_events.events.group_events import GroupDissolved, GroupMemberMuted, GroupMemberRoleSet, GroupUpdated
from chat_events.events.types import Envelope, GroupCreated, GroupMemberJoined, GroupMemberLeft, PersonalChatSent
from chat_events.streams.records import Output, output_envelope_id

MAX_NAMED_MEMBERS = 50
"""A ``groupCreated`` message names at most this many initial members (and counts them all), so
it stays far below the message size limit for a group of thousands."""

SYSTEM_MESSAGE_IDS = uuid.UUID("3b0e6f52-9a1d-5c4e-8f27-6d5a4c3b2a19")

GroupChange = (
    GroupCreated
    | GroupMemberJoined
    | GroupMemberLeft
    | GroupUpdated
    | GroupMemberRoleSet
    | GroupMemberMuted
    | GroupDissolved
)


def system_message_id(source_envelope_id: str) -> str:
    return str(uuid.uuid5(SYSTEM_MESSAGE_IDS, source_envelope_id))


def actor_of(event: GroupChange) -> str:
    """Who made the change (the system message's sender)."""
    if isinstance(event, GroupCreated):
        return event.owner_id
    if isinstance(event, GroupMemberJoined):
        return event.added_by or event.member_id
    if isinstance(event, GroupMemberLeft):
        return event.removed_by or event.member_id
    if isinstance(event, GroupUpdated):
        return event.updated_by
    if isinstance(event, GroupMemberRoleSet | GroupMemberMuted):
        return event.set_by
    return event.dissolved_by


def system_payload(event: GroupChange) -> dict[str, Any]:
    """The JSON body of the change's system message. A transfer of ownership (``role``
    ``owner``) names ``previous_owner``: its actor, who had it and is now an admin."""
    body: dict[str, Any] = {"event": event.EVENT_NAME, "actor": actor_of(event)}
    if isinstance(event, GroupCreated):
        members = sorted({event.owner_id, *event.member_ids})
        body |= {"name": event.name, "members": members[:MAX_NAMED_MEMBERS], "member_count": len(members)}
    elif isinstance(event, GroupMemberJoined | GroupMemberLeft):
        body["member"] = event.member_id
    elif isinstance(event, GroupUpdated):
        changes = {"name": event.name, "avatar_url": event.avatar_url, "description": event.description}
        body |= {k: v for k, v in changes.items() if v is not None}
    elif isinstance(event, GroupMemberRoleSet):
        body |= {"member": event.member_id, "role": event.role}
        if event.role == "owner":
            body["previous_owner"] = event.set_by
    elif isinstance(event, GroupMemberMuted):
        body |= {"member": event.member_id, "muted": event.muted, "until_ms": event.until_ms}
    return body


def system_message(source: Envelope, event: GroupChange, *, topic: str, stage: str) -> Output:
    """The output carrying the change's system message. A member removed by someone else is
    named in ``target_members``, so the fan-out can give them the "you were removed" message
    too although they are no longer a member (as WhatsApp does)."""
    removed = (event.member_id,) if isinstance(event, GroupMemberLeft) and actor_of(event) != event.member_id else ()
    message = PersonalChatSent(
        message_id=system_message_id(source.id),
        sender_id=actor_of(event),
        target_id=event.group_id,
        target_type="group",
        conversation_id=event.group_id,
        payload=json.dumps(system_payload(event), separators=(",", ":")),
        message_type="text",
        target_members=removed,
        kind="system",
    )
    envelope = new_envelope(
        message,
        user_id=actor_of(event),
        trace_id=source.trace_id,
        span_context=source.span_context,
        timestamp=source.timestamp,
        envelope_id=output_envelope_id(source.id, stage),
    )
    return Output(topic, event.group_id.encode(), envelope)
