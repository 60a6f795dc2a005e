"""Changing a sent message (issue 16, items 1 and 2): edit, recall, delete for me or for
everyone, add or remove a reaction — for the frames of :mod:`chat_events.api.message_change_frames`
and the ``/v1/messages/{id}`` routes alike.

The edge reads the message, checks that the user is in its conversation and that the change is
allowed (:func:`chat_events.events.change_rules.change_refusal`, the rules the persist stage
applies again), then publishes the change to ``chat.personal-chat`` keyed by the conversation,
so it is applied in order with the conversation's sends. The answer, like a ``send``'s, says the
change is durable in Kafka; the ``message`` pushes of its change entry follow. Someone outside
the conversation gets the answer of an unknown message (11), never a hint that it exists.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any

from chat_events.api.authz import message_id_for
from chat_events.api.connection import Connection
from chat_events.api.conversation_actions import ActionRefused
from chat_events.api.edge import EdgeNode
from chat_events.api.message_change_frames import (
    DeleteMessage,
    EditMessage,
    MessageChangeRequest,
    ReactToMessage,
    RecallMessage,
)
from chat_events.api.protocol import Code, Frame, ProtocolError, error_frame, output_frame
from chat_events.errors import ChatEventsError
from chat_events.events.change_rules import (
    NOT_FOUND,
    ChangeRefusal,
    ChangeWindows,
    change_refusal,
    entry_kind,
    group_administrators,
)
from chat_events.events.factory import new_envelope
from chat_events.events.message_events import (
    MessageChange,
    MessageDeleted,
    MessageEdited,
    MessageReacted,
    MessageRecalled,
)
from chat_events.events.types import ChatMessage

_CODES: dict[str, tuple[int, Code]] = {
    "not_found": (404, Code.NOT_FOUND),
    "forbidden": (403, Code.FORBIDDEN),
    "too_late": (409, Code.TOO_LATE),
    "invalid": (422, Code.INVALID_FIELD),
}


def refused(refusal: ChangeRefusal) -> ActionRefused:
    status, code = _CODES[refusal.code]
    return ActionRefused(status, code, refusal.reason, refusal.field if refusal.code == "invalid" else None)


def change_event(user_id: str, target: ChatMessage, request: MessageChangeRequest) -> MessageChange:
    """The event a request publishes (pure): its ``change_id`` derives from the nonce, as a send's id."""
    common: dict[str, Any] = {
        "change_id": message_id_for(user_id, request.client_msg_id),
        "actor_id": user_id,
        "conversation_id": target.conversation_id,
        "message_id": target.message_id,
        "client_msg_id": request.client_msg_id,
    }
    if isinstance(request, EditMessage):
        return MessageEdited(**common, payload=request.content, mentions=request.mentions)
    if isinstance(request, RecallMessage):
        return MessageRecalled(**common)
    if isinstance(request, DeleteMessage):
        return MessageDeleted(**common, scope=request.scope)
    return MessageReacted(**common, emoji=request.emoji, added=not request.remove)


async def change_message(
    edge: EdgeNode,
    user_id: str,
    request: MessageChangeRequest,
    *,
    session_id: str | None = None,
    device_id: str | None = None,
) -> dict[str, Any]:
    """Check, publish and await the broker's acknowledgement; the answer's ``data``."""
    acknowledged, data = await enqueue_change(edge, user_id, request, session_id=session_id, device_id=device_id)
    await _acknowledged(acknowledged)
    return data


async def _acknowledged(acknowledged: Awaitable[Any]) -> None:
    try:
        await acknowledged
    except ChatEventsError as exc:
        raise ActionRefused(
            503, Code.UNAVAILABLE, f"not accepted ({exc.code}): retry with the same client_msg_id"
        ) from None


async def change_frame(edge: EdgeNode, conn: Connection, frame: Frame) -> Awaitable[None]:
    """Check and enqueue a change frame in frame order (so one socket's changes reach Kafka in
    the order sent); returns the task body that pushes the answer once Kafka acknowledged it."""
    request = frame.request
    assert isinstance(request, EditMessage | RecallMessage | DeleteMessage | ReactToMessage)
    try:
        acknowledged, data = await enqueue_change(
            edge, conn.user_id, request, session_id=conn.session_id, device_id=conn.device_id
        )
    except ActionRefused as exc:
        raise _protocol_error(exc, frame) from None

    async def answer() -> None:
        try:
            await _acknowledged(acknowledged)
        except ActionRefused as exc:
            conn.push(error_frame(_protocol_error(exc, frame)))
            return
        conn.push(output_frame(frame.type, request_id=frame.request_id, data=data))

    return answer()


def _protocol_error(exc: ActionRefused, frame: Frame) -> ProtocolError:
    return ProtocolError(
        exc.code,
        exc.message,
        data={"field": exc.field} if exc.field else None,
        frame_type=frame.type,
        request_id=frame.request_id,
    )


async def enqueue_change(
    edge: EdgeNode,
    user_id: str,
    request: MessageChangeRequest,
    *,
    session_id: str | None = None,
    device_id: str | None = None,
) -> tuple[Awaitable[Any], dict[str, Any]]:
    """Check one change and enqueue it to Kafka: the broker's acknowledgement to await and the
    answer's ``data`` (raises :class:`ActionRefused`)."""
    wait_ms, _ = edge.send_limits.take(user_id, time.monotonic())
    if wait_ms:
        raise ActionRefused(429, Code.RATE_LIMITED, f"too many messages; retry in {wait_ms} ms")
    if not edge.admission.open:
        raise ActionRefused(503, Code.UNAVAILABLE, "busy: the workers are behind; retry with the same client_msg_id")
    try:
        target = await edge.store.get_message(request.message_id)
        if target is None or not await _in_conversation(edge, user_id, target):
            raise refused(NOT_FOUND)
        event = change_event(user_id, target, request)
        admin = False
        if isinstance(event, MessageDeleted) and event.scope == "everyone" and target.target_type == "group":
            admin = user_id in group_administrators(await edge.store.get_group(target.target_id))
    except ChatEventsError as exc:
        raise ActionRefused(503, Code.UNAVAILABLE, f"the store did not answer ({exc.code}); retry") from None
    settings = edge.settings
    windows = ChangeWindows(edit_ms=settings.edit_window_s * 1000, recall_ms=settings.recall_window_s * 1000)
    refusal = change_refusal(event, target, at_ms=int(time.time() * 1000), windows=windows, admin=admin)
    if refusal is not None:
        raise refused(refusal)
    envelope = new_envelope(event, user_id=user_id, session_id=session_id, client_id=device_id)
    try:
        acknowledged = await edge.publisher.enqueue(envelope)
    except ChatEventsError as exc:
        raise ActionRefused(
            503, Code.UNAVAILABLE, f"not accepted ({exc.code}): retry with the same client_msg_id"
        ) from None
    return acknowledged, {
        "message_id": target.message_id,
        "change_id": event.change_id,
        "conversation_id": target.conversation_id,
        "kind": entry_kind(event),
    }


async def _in_conversation(edge: EdgeNode, user_id: str, message: ChatMessage) -> bool:
    if message.target_type == "user":
        return user_id in (message.sender_id, message.target_id)
    members = await edge.memberships.members(message.target_id, including=user_id)
    return members is not None and user_id in members
