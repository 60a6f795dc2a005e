"""What a user does to their own conversation list, for the WebSocket frames and the HTTP
routes alike: check it (pure rules in :mod:`chat_events.api.authz`), then publish the event
(``conversationRead``, ``conversationFlagsSet``, ``allConversationsRead`` to ``chat.inbox``,
keyed by the user). The worker owning the user's inbox applies it and pushes the new rows
(``conversation`` frames) to every device of the user. Nothing is published for a refused action.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from chat_events.api.authz import conversation_id_problem, direct_participants, may_read
from chat_events.api.edge import EdgeNode
from chat_events.api.protocol import Code
from chat_events.errors import ChatEventsError
from chat_events.events.conversation_events import (
    AllConversationsRead,
    ConversationFlagsSet,
    ConversationRead,
    ReadReceiptsSet,
)
from chat_events.events.factory import new_envelope
from chat_events.events.types import Envelope

MAX_BATCH_CONVERSATIONS = 100
"""Conversations one ``conversation_set`` (bilibili ``BatchRmSessions``) or detail request names at most."""


class ActionRefused(Exception):
    """A refused action: ``status`` for HTTP, ``code`` for both; ``field`` names a bad field."""

    def __init__(self, status: int, code: Code, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


def check_conversation_ids(conversation_ids: Sequence[str], field: str) -> None:
    """Raise :class:`ActionRefused` (422, code 5) unless 1..MAX_BATCH ids in canonical form."""
    if not conversation_ids or len(conversation_ids) > MAX_BATCH_CONVERSATIONS:
        raise ActionRefused(422, Code.INVALID_FIELD, f"{field}: give 1-{MAX_BATCH_CONVERSATIONS} ids", field)
    for i, conversation_id in enumerate(conversation_ids):
        problem = conversation_id_problem(conversation_id)
        if problem is not None:
            name = field if len(conversation_ids) == 1 else f"{field}[{i}]"
            raise ActionRefused(422, Code.INVALID_FIELD, f"{name}: {problem}", name)


async def check_member(edge: EdgeNode, user_id: str, conversation_id: str, *, or_listed: bool = False) -> None:
    """Raise :class:`ActionRefused` (403, code 8) unless ``user_id`` is in the conversation (or,
    with ``or_listed``, has it in their list: someone who left a group may still read or remove
    it); the same answer whether or not it exists (outsiders cannot probe groups)."""
    direct = direct_participants(conversation_id) is not None
    members = None if direct else await edge.memberships.members(conversation_id, including=user_id)
    if may_read(user_id, conversation_id, members):
        return
    if or_listed and (user_id, conversation_id) in await edge.store.get_conversations([(user_id, conversation_id)]):
        return
    raise ActionRefused(403, Code.FORBIDDEN, f"not a member of {conversation_id}")


async def read(edge: EdgeNode, user_id: str, conversation_id: str, seq: int, device_id: str | None) -> int:
    """Mark ``conversation_id`` read up to ``seq`` (clamped to its last stored seq); returns the
    read seq published. Never backwards: the worker ignores a read at or below the current one."""
    check_conversation_ids([conversation_id], "conversation_id")
    await check_member(edge, user_id, conversation_id, or_listed=True)
    last = (await edge.store.max_conversation_seqs([conversation_id])).get(conversation_id, 0)
    read_seq = min(seq, last)
    event = ConversationRead(
        conversation_id=conversation_id, read_seq=read_seq, read_at_ms=_now_ms(), device_id=device_id
    )
    await _publish(edge, new_envelope(event, user_id=user_id))
    return read_seq


async def set_flags(
    edge: EdgeNode,
    user_id: str,
    conversation_ids: Sequence[str],
    *,
    pinned: bool | None,
    muted: bool | None,
    hidden: bool | None,
) -> None:
    """Pin, mute or remove (``hidden``) conversations of ``user_id``: all are checked before any
    is published (one refused id refuses the request)."""
    if pinned is None and muted is None and hidden is None:
        raise ActionRefused(422, Code.INVALID_FIELD, "give at least one of pinned, muted, hidden", "pinned")
    check_conversation_ids(conversation_ids, "conversation_ids")
    for conversation_id in conversation_ids:
        await check_member(edge, user_id, conversation_id, or_listed=True)
    now = _now_ms()
    up_to = (await edge.store.max_user_seqs([user_id])).get(user_id, 0) if hidden else 0
    for conversation_id in dict.fromkeys(conversation_ids):
        event = ConversationFlagsSet(
            conversation_id=conversation_id,
            set_at_ms=now,
            pinned=pinned,
            muted=muted,
            hidden=hidden,
            up_to_user_seq=up_to,
        )
        await _publish(edge, new_envelope(event, user_id=user_id))


async def read_all(edge: EdgeNode, user_id: str) -> None:
    """Mark every conversation of ``user_id`` read (bilibili ``UpdateUnflwRead``)."""
    up_to = (await edge.store.max_user_seqs([user_id])).get(user_id, 0)
    event = AllConversationsRead(read_at_ms=_now_ms(), up_to_user_seq=up_to)
    await _publish(edge, new_envelope(event, user_id=user_id))


async def set_read_receipts(edge: EdgeNode, user_id: str, enabled: bool) -> None:
    """Turn sending read receipts on or off for ``user_id`` (their devices still sync reads)."""
    await _publish(edge, new_envelope(ReadReceiptsSet(enabled=enabled, set_at_ms=_now_ms()), user_id=user_id))


async def set_settings(
    edge: EdgeNode, user_id: str, read_receipts: bool | None, show_last_seen: bool | None
) -> dict[str, bool]:
    """The ``settings`` frame and ``PUT /v1/settings``: publish each setting given (None: as it
    is); the answer names those."""
    from chat_events.api.presence_actions import set_show_last_seen  # it imports this module

    changed: dict[str, bool] = {}
    if read_receipts is not None:
        await set_read_receipts(edge, user_id, read_receipts)
        changed["read_receipts"] = read_receipts
    if show_last_seen is not None:
        await set_show_last_seen(edge, user_id, show_last_seen)
        changed["show_last_seen"] = show_last_seen
    return changed


async def _publish(edge: EdgeNode, envelope: Envelope) -> None:
    try:
        await edge.publisher.publish(envelope)
    except ChatEventsError as exc:
        raise ActionRefused(503, Code.UNAVAILABLE, f"not accepted ({exc.code}); retry") from None


def _now_ms() -> int:
    return int(time.time() * 1000)
