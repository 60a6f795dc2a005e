"""Changing sent messages from the Python client: edit, recall, delete, react (issue 16).

A mixin of :class:`chat_events.client.ChatClient` (kept apart to keep that module small). Each
call returns once Kafka has the change (``{"message_id", "change_id", "conversation_id",
"kind"}``); the change arrives on every member device as a ``message`` delivery of its own
whose ``message["kind"]`` names it and ``message["relates_to"]`` the message changed. A refusal
raises :class:`~chat_events.client.errors.ChatError` with the server's code (11 unknown message,
8 not yours, 17 too late, 5 bad input). Pass the same ``client_msg_id`` to retry safely.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal, Protocol


class _Caller(Protocol):
    async def _call(self, frame_type: str, data: dict[str, Any]) -> dict[str, Any]: ...


class MessageChanges:
    """``edit``, ``recall``, ``delete`` and ``react`` over the client's socket."""

    async def edit(
        self: _Caller,
        message_id: str,
        content: str,
        *,
        mentions: tuple[str, ...] = (),
        client_msg_id: str | None = None,
    ) -> dict[str, Any]:
        """Replace the text of a message you sent (within the edit window)."""
        data: dict[str, Any] = {"message_id": message_id, "content": content, "client_msg_id": _nonce(client_msg_id)}
        if mentions:
            data["mentions"] = list(mentions)
        return await self._call("edit", data)

    async def recall(self: _Caller, message_id: str, *, client_msg_id: str | None = None) -> dict[str, Any]:
        """Recall a message you sent for everyone (within the recall window): a stub stays."""
        return await self._call("recall", {"message_id": message_id, "client_msg_id": _nonce(client_msg_id)})

    async def delete(
        self: _Caller,
        message_id: str,
        *,
        scope: Literal["me", "everyone"] = "me",
        client_msg_id: str | None = None,
    ) -> dict[str, Any]:
        """Delete a message for yourself (``me``, on all your devices) or for everyone (your own
        message, or any message of a group you administer)."""
        data = {"message_id": message_id, "scope": scope, "client_msg_id": _nonce(client_msg_id)}
        return await self._call("delete", data)

    async def react(
        self: _Caller, message_id: str, emoji: str, *, remove: bool = False, client_msg_id: str | None = None
    ) -> dict[str, Any]:
        """Add (or, with ``remove``, take back) a reaction on a message."""
        data = {"message_id": message_id, "emoji": emoji, "remove": remove, "client_msg_id": _nonce(client_msg_id)}
        return await self._call("react", data)


def _nonce(client_msg_id: str | None) -> str:
    return client_msg_id or str(uuid.uuid4())
