"""Conversation ids: the partition key of every message.

A 1:1 conversation's id is derived from the sorted pair of user ids, so both sides (and every
stage) compute the same id without a lookup: ``dm:<smaller>:<larger>``. User ids cannot contain
``:`` (see :data:`chat_events.events.validation.ID_PATTERN`), so the form is unambiguous.
A group's conversation id is the group id itself.
"""

from __future__ import annotations

from chat_events.events.types import ChatMessage, PersonalChatSent

DIRECT_PREFIX = "dm:"


def direct_conversation_id(user_a: str, user_b: str) -> str:
    """The id of the 1:1 conversation between two users; symmetric in its arguments."""
    low, high = (user_a, user_b) if user_a <= user_b else (user_b, user_a)
    return f"{DIRECT_PREFIX}{low}:{high}"


def conversation_id_of(event: PersonalChatSent | ChatMessage) -> str:
    """The conversation a message belongs to (derived from sender and target; ignores the
    message's own ``conversation_id`` claim)."""
    if event.target_type == "user":
        return direct_conversation_id(event.sender_id, event.target_id)
    return event.target_id
