"""The WebSocket side of the conversation list: the ``read``, ``conversation_set`` and
``read_all`` frames (parsed in :mod:`chat_events.api.protocol`, done by
:mod:`chat_events.api.conversation_actions`), and the ``conversation`` and ``receipt`` pushes
of the ``conversationChanged`` and ``readReceiptDispatched`` records on the edge's topic."""

from __future__ import annotations

from typing import Any

from chat_events.api.connection import Connection
from chat_events.api.conversation_actions import ActionRefused, read, read_all, set_flags, set_settings
from chat_events.api.edge import EdgeNode
from chat_events.api.protocol import ConversationSet, Frame, ProtocolError, Read, ReadAll, SetSettings, output_frame
from chat_events.api.registry import ConnectionRegistry
from chat_events.events.conversation_events import (
    ConversationChanged,
    DeliveryReceiptDispatched,
    ReadReceiptDispatched,
)


async def conversation_frame(edge: EdgeNode, conn: Connection, frame: Frame) -> str:
    """Do one conversation-list frame; the answer says it was accepted (the ``conversation``
    push that follows carries the row as changed)."""
    request, rid = frame.request, frame.request_id
    try:
        if isinstance(request, Read):
            read_seq = await read(edge, conn.user_id, request.conversation_id, request.seq, conn.device_id)
            data: dict[str, Any] = {"conversation_id": request.conversation_id, "read_seq": read_seq}
        elif isinstance(request, ConversationSet):
            await set_flags(
                edge,
                conn.user_id,
                request.conversation_ids,
                pinned=request.pinned,
                muted=request.muted,
                hidden=request.hidden,
            )
            data = {"conversation_ids": list(request.conversation_ids)}
        elif isinstance(request, SetSettings):
            data = await set_settings(edge, conn.user_id, request.read_receipts, request.show_last_seen)
        else:
            assert isinstance(request, ReadAll)
            await read_all(edge, conn.user_id)
            data = {}
    except ActionRefused as exc:
        raise ProtocolError(
            exc.code,
            exc.message,
            data={"field": exc.field} if exc.field else None,
            frame_type=frame.type,
            request_id=rid,
        ) from None
    return output_frame(frame.type, request_id=rid, data=data)


def changed_view(event: ConversationChanged) -> dict[str, Any]:
    """A ``conversation`` push: the row of the user's list as it is now (the fields of
    ``GET /v1/conversations`` rows that a read or a flag change can move)."""
    return {
        "conversation_id": event.conversation_id,
        "last_message_id": event.last_message_id,
        "last_seq": event.last_seq,
        "read_seq": event.read_seq,
        "unread": event.unread,
        "pinned": event.pinned,
        "muted": event.muted,
        "hidden": event.hidden,
        "last_activity_ms": event.last_activity_ms,
        "version": event.version,
        "unread_mentions": event.unread_mentions,
    }


def push_conversation_event(
    registry: ConnectionRegistry, event: ConversationChanged | ReadReceiptDispatched | DeliveryReceiptDispatched
) -> int:
    """Push a list change to every socket of its user here, or a receipt to every socket of its
    recipients here; returns how many sockets got it."""
    if isinstance(event, ConversationChanged):
        text = output_frame("conversation", data=changed_view(event))
        return sum(conn.push(text) for conn in registry.of_user(event.recipient_id))
    if isinstance(event, ReadReceiptDispatched):
        who, kind, seq = event.reader_id, "read", event.read_seq
    else:
        who, kind, seq = event.delivered_to, "delivered", event.delivered_seq
    data = {"conversation_id": event.conversation_id, "user_id": who, "kind": kind, "seq": seq}
    text = output_frame("receipt", data=data)
    return sum(conn.push(text) for recipient in event.recipient_ids for conn in registry.of_user(recipient))
