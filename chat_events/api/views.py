"""JSON shapes the edge sends to clients (frames' ``data`` and HTTP bodies). Pure functions.

A message on the wire::

    {"message_id": "…", "conversation_id": "dm:alice:bob", "seq": 12, "sender_id": "alice",
     "target_type": "user", "target_id": "bob", "message_type": "text", "content": "hi",
     "client_msg_id": "…", "mentions": [], "sent_at_ms": 1700000000000, "status": "normal",
     "kind": "message", "relates_to": null, "reply_to": null, "edited_at_ms": 0, "changed_seq": 0}

A change entry (``kind`` edit, recall, delete, delete_for_me, reaction_add, reaction_remove)
names the message it changes in ``relates_to``; see :mod:`chat_events.api.message_render` for
how stored messages are shown to one reader (edits, recalls, reactions, deleted for me).

``seq`` is the per-conversation seq (identical for every member); a delivery to a user also
carries that user's own ``user_seq`` (dense per user: what ``sync`` and ``ack`` count).
"""

from __future__ import annotations

from typing import Any

from chat_events.events.types import ChatMessage
from chat_events.store.models import ConversationState


def message_view(message: ChatMessage) -> dict[str, Any]:
    return {
        "message_id": message.message_id,
        "conversation_id": message.conversation_id,
        "seq": message.seq,
        "sender_id": message.sender_id,
        "target_type": message.target_type,
        "target_id": message.target_id,
        "message_type": message.message_type,
        "content": message.payload,
        "client_msg_id": message.client_msg_id,
        "mentions": list(message.mentions),
        "sent_at_ms": message.sent_at_ms,
        "status": message.status,
        "kind": message.kind,
        "relates_to": message.relates_to,
        "reply_to": message.reply_to,
        "edited_at_ms": message.edited_at_ms,
        "changed_seq": message.changed_seq,
    }


def delivery_view(user_seq: int, message: ChatMessage) -> dict[str, Any]:
    """``data`` of a ``message`` push and of each item of a ``sync`` answer."""
    return {"user_seq": user_seq, "message": message_view(message)}


def room_delivery_view(message: ChatMessage) -> dict[str, Any]:
    """``data`` of a ``room_message`` push: read-fan-out rooms count by conversation seq."""
    return {"room_id": message.conversation_id, "message": message_view(message)}


def conversation_view(state: ConversationState) -> dict[str, Any]:
    return {
        "conversation_id": state.conversation_id,
        "last_message_id": state.last_message_id,
        "last_seq": state.last_seq,
        "last_user_seq": state.last_user_seq,
        "last_activity_ms": state.last_activity_ms,
        "read_seq": state.read_seq,
        "unread": state.unread,
        "pinned": state.pinned,
        "muted": state.muted,
        "hidden": state.hidden,
        "version": state.version,
        "unread_mentions": state.unread_mentions,
    }
