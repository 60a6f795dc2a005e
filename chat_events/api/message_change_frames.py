"""Parsing of the frames that change a sent message (issue 16, items 1 and 2), registered in the
parser table of :mod:`chat_events.api.protocol`; done by :mod:`chat_events.api.message_changes`.

Input::

    {"type": "edit", "request_id": 1, "data": {"message_id": "…", "content": "new text", "client_msg_id": "e1"}}
    {"type": "recall", "request_id": 2, "data": {"message_id": "…", "client_msg_id": "r1"}}
    {"type": "delete", "request_id": 3, "data": {"message_id": "…", "scope": "me", "client_msg_id": "d1"}}
    {"type": "react", "request_id": 4, "data": {"message_id": "…", "emoji": "👍", "client_msg_id": "x1"}}

``client_msg_id`` is the change's idempotency nonce (as for ``send``): a retried change is the
same change. ``react`` with ``"remove": true`` takes the reaction back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chat_events.api.protocol import _choice, _Invalid, _mentions, _str, _type_name
from chat_events.events.change_validation import MAX_EMOJI_BYTES
from chat_events.events.message_events import DELETE_SCOPES
from chat_events.events.validation import MAX_CLIENT_MSG_ID, UUID_PATTERN


@dataclass(frozen=True, slots=True)
class EditMessage:
    message_id: str
    content: str
    client_msg_id: str
    mentions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RecallMessage:
    message_id: str
    client_msg_id: str


@dataclass(frozen=True, slots=True)
class DeleteMessage:
    message_id: str
    scope: str
    """``me`` (hidden for you) or ``everyone`` (the sender, or a group admin)."""
    client_msg_id: str


@dataclass(frozen=True, slots=True)
class ReactToMessage:
    message_id: str
    emoji: str
    client_msg_id: str
    remove: bool = False


MessageChangeRequest = EditMessage | RecallMessage | DeleteMessage | ReactToMessage


def _message_id(data: dict[str, Any]) -> str:
    value = _str(data, "message_id", max_len=36)
    assert value is not None
    if not UUID_PATTERN.fullmatch(value):
        raise _Invalid("message_id", "must be a message id (a UUID as in the message push)")
    return value


def _nonce(data: dict[str, Any]) -> str:
    value = _str(data, "client_msg_id", max_len=MAX_CLIENT_MSG_ID)
    assert value is not None
    return value


def parse_edit(data: dict[str, Any], max_payload_bytes: int) -> EditMessage:
    message_id = _message_id(data)
    content = data.get("content")
    if not isinstance(content, str):
        raise _Invalid("content", f"must be a string (only text messages are edited), got {_type_name(content)}")
    if not content.strip():
        raise _Invalid("content", "must not be blank")
    if len(content.encode()) > max_payload_bytes:
        raise _Invalid("content", f"larger than {max_payload_bytes} bytes", too_large=True)
    mentions = _mentions(data)
    return EditMessage(message_id, content, _nonce(data), mentions)


def parse_recall(data: dict[str, Any], _max_payload_bytes: int) -> RecallMessage:
    return RecallMessage(_message_id(data), _nonce(data))


def parse_delete(data: dict[str, Any], _max_payload_bytes: int) -> DeleteMessage:
    return DeleteMessage(_message_id(data), _choice(data, "scope", DELETE_SCOPES), _nonce(data))


def parse_react(data: dict[str, Any], _max_payload_bytes: int) -> ReactToMessage:
    message_id = _message_id(data)
    emoji = _str(data, "emoji", max_len=MAX_EMOJI_BYTES)
    assert emoji is not None
    if len(emoji.encode()) > MAX_EMOJI_BYTES or any(c.isspace() for c in emoji):
        raise _Invalid("emoji", f"must be one emoji (at most {MAX_EMOJI_BYTES} UTF-8 bytes, no spaces)")
    remove = data.get("remove", False)
    if not isinstance(remove, bool):
        raise _Invalid("remove", f"must be a boolean, got {_type_name(remove)}")
    return ReactToMessage(message_id, emoji, _nonce(data), remove)
