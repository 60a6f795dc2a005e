"""Stored messages as one reader sees them now (``sync`` pages, history, room pages): one batch
of store reads per page, then pure shaping (:func:`shape`).

* A change entry's content is the changed message's current content: an ``edit`` entry shows the
  message's newest text while it is edited, nothing once it was recalled or deleted (the content
  of a recalled message is gone from every read path, old edit entries included).
* A message the reader deleted for themselves is shown as a stub, ``"hidden": true`` with no
  content (kept, not dropped, so user seqs and conversation seqs stay dense for the client).
* Someone else's ``delete_for_me`` entry is a placeholder (``"hidden": true``, no ``relates_to``).
* Messages carry their reactions: ``"reactions": [{"emoji": "👍", "count": 2, "user_ids": [...]}]``
  (``user_ids``: the first :data:`REACTORS_SHOWN`, in the order they reacted).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from chat_events.api.views import message_view
from chat_events.events.types import ChatMessage
from chat_events.store.port import MessageStore

REACTORS_SHOWN = 20


def shape(
    message: ChatMessage,
    reader_id: str,
    *,
    related: Mapping[str, ChatMessage],
    reactions: Mapping[str, Mapping[str, tuple[str, ...]]],
    hidden: frozenset[str],
) -> dict[str, Any]:
    """The view of ``message`` given what was read for its page (pure)."""
    view = message_view(message)
    if message.kind == "delete_for_me" and message.sender_id != reader_id:
        # someone else's own deletion: a placeholder that keeps the seqs dense, naming nothing
        return {**view, "relates_to": None, "hidden": True}
    if message.kind == "edit":
        target = related.get(message.relates_to or "")
        view["content"] = target.payload if target is not None and target.status == "edited" else ""
    if message.message_id in hidden:
        view["content"] = ""
        view["mentions"] = []
        view["hidden"] = True
        return view
    own = reactions.get(message.message_id)
    if own:
        view["reactions"] = [
            {"emoji": emoji, "count": len(users), "user_ids": list(users[:REACTORS_SHOWN])}
            for emoji, users in own.items()
        ]
    return view


async def render(store: MessageStore, reader_id: str, messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Views of ``messages`` (in order) for ``reader_id``."""
    if not messages:
        return []
    by_id = {m.message_id: m for m in messages}
    wanted = {m.relates_to for m in messages if m.kind == "edit" and m.relates_to and m.relates_to not in by_id}
    plain = [m.message_id for m in messages if m.kind == "message"]
    found, reactions, hidden = await asyncio.gather(
        store.find_messages(wanted) if wanted else _nothing(),
        store.reactions_of(plain) if plain else _no_reactions(),
        store.hidden_messages(reader_id, by_id),
    )
    related = {**by_id, **found}
    return [shape(m, reader_id, related=related, reactions=reactions, hidden=hidden) for m in messages]


async def _nothing() -> dict[str, ChatMessage]:
    return {}


async def _no_reactions() -> dict[str, dict[str, tuple[str, ...]]]:
    return {}
