"""Who may do what: pure decisions the edge applies before anything reaches Kafka.

The acting user is always the authenticated one (the token's subject), never a frame field.
The fan-out stage applies the same membership rule again (a post that raced a removal is
dead-lettered there), so the edge's cached member lists only need to be nearly fresh.
"""

from __future__ import annotations

import uuid

from chat_events.events.conversations import DIRECT_PREFIX, direct_conversation_id
from chat_events.events.validation import ID_PATTERN

MESSAGE_ID_NAMESPACE = uuid.UUID("6f1c1d1e-5b0a-4d7e-9a55-2f3c6a8b9e10")


def message_id_for(sender_id: str, client_msg_id: str) -> str:
    """The message id of a send: derived from (sender, client nonce), so a retried send — on any
    edge, after any crash — carries the same id and every stage dedupes it."""
    return str(uuid.uuid5(MESSAGE_ID_NAMESPACE, f"{sender_id}\x00{client_msg_id}"))


def conversation_of(user_id: str, target_type: str, target_id: str) -> str:
    return direct_conversation_id(user_id, target_id) if target_type == "user" else target_id


HIDDEN_GROUP = "no such group, or you are not a member"
"""The one refusal an outsider gets from any group operation (code 8), whether the group exists
or not: which group ids exist is its members' business."""


def group_outsider(user_id: str, group_members: frozenset[str] | None, owner_id: str | None = None) -> bool:
    """Whether ``user_id`` may not learn that the group exists: neither an active member nor
    its owner (``group_members`` None: there is no such group, so everybody is an outsider)."""
    return group_members is None or (user_id not in group_members and user_id != owner_id)


def send_refusal(user_id: str, target_type: str, target_id: str, group_members: frozenset[str] | None) -> str | None:
    """Why ``user_id`` may not post to the target, or None if allowed.

    ``group_members`` is the group's active member set (None: no such group); a missing group
    and one the user is not in are refused alike (:data:`HIDDEN_GROUP`)."""
    if target_type == "user":
        return "cannot send a message to yourself" if target_id == user_id else None
    return HIDDEN_GROUP if group_outsider(user_id, group_members) else None


def conversation_id_problem(conversation_id: str) -> str | None:
    """What is wrong with a conversation id a client named, or None if it is one in canonical
    form: ``dm:<a>:<b>`` of two different user ids with a < b (what :func:`direct_conversation_id`
    makes), or a group id. Other spellings name no conversation: they are refused, not read."""
    if not conversation_id.startswith(DIRECT_PREFIX):
        return None if ID_PATTERN.fullmatch(conversation_id) else "must be dm:<user id>:<user id> or a group id"
    parts = conversation_id[len(DIRECT_PREFIX) :].split(":")
    if len(parts) != 2 or not all(ID_PATTERN.fullmatch(p) for p in parts):
        return "must be dm:<user id>:<user id> of two user ids"
    if parts[0] == parts[1]:
        return "must name two different users"
    if parts[0] > parts[1]:
        return f"the user ids must be in sorted order: {direct_conversation_id(parts[0], parts[1])}"
    return None


def direct_participants(conversation_id: str) -> tuple[str, str] | None:
    """The two users of a 1:1 conversation id in canonical form, or None if it is not one."""
    if not conversation_id.startswith(DIRECT_PREFIX) or conversation_id_problem(conversation_id) is not None:
        return None
    low, _, high = conversation_id[len(DIRECT_PREFIX) :].partition(":")
    return low, high


def may_read(user_id: str, conversation_id: str, group_members: frozenset[str] | None) -> bool:
    """Only the two participants read a 1:1 conversation (in canonical form: see
    :func:`conversation_id_problem`); only active members read a group."""
    pair = direct_participants(conversation_id)
    if pair is not None:
        return user_id in pair
    return group_members is not None and user_id in group_members


def group_admin_refusal(
    actor_id: str, owner_id: str | None, members: frozenset[str] | None, *, adding: bool, subject_id: str
) -> str | None:
    """Membership changes: members add members; the owner removes anyone; a member may leave.
    Anyone else (``members`` None: no such group) gets :data:`HIDDEN_GROUP`, even to leave."""
    if members is None or group_outsider(actor_id, members, owner_id):
        return HIDDEN_GROUP
    if adding:
        return None if actor_id in members else "only members add members"
    if subject_id == actor_id or actor_id == owner_id:
        return None
    return "only the owner removes other members"
