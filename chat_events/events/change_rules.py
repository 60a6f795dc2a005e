"""Who may change a sent message, and what a change does: pure decisions shared by the edge
(before it publishes, so the client gets a code) and the persist stage (the single writer of the
conversation, which applies the change against the stored message; a change that raced another
one, e.g. an edit after a recall, is refused there too).

A change (:mod:`chat_events.events.message_events`) becomes a **change entry**: a
:class:`~chat_events.events.types.ChatMessage` of its own, with the ``change_id`` as its id, the
next conversation seq, ``kind`` naming the change and ``relates_to`` the changed message. The
changed message's own row is rewritten for edits, recalls and deletes for everyone (its
``changed_seq`` becomes the entry's seq: the message's version)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from chat_events.events.message_events import MessageChange, MessageDeleted, MessageEdited, MessageReacted
from chat_events.events.types import ChatMessage
from chat_events.store.models import Group

RefusalCode = Literal["not_found", "forbidden", "too_late", "invalid"]


@dataclass(frozen=True, slots=True)
class ChangeWindows:
    """How long after sending a message its sender may edit it and recall it (milliseconds)."""

    edit_ms: int
    recall_ms: int


@dataclass(frozen=True, slots=True)
class ChangeRefusal:
    code: RefusalCode
    reason: str
    field: str = "message_id"


NOT_FOUND = ChangeRefusal("not_found", "no such message in this conversation")


def entry_kind(change: MessageChange) -> str:
    """The ``kind`` of the change entry ``change`` becomes."""
    if isinstance(change, MessageEdited):
        return "edit"
    if isinstance(change, MessageDeleted):
        return "delete" if change.scope == "everyone" else "delete_for_me"
    if isinstance(change, MessageReacted):
        return "reaction_add" if change.added else "reaction_remove"
    return "recall"


def change_refusal(
    change: MessageChange,
    target: ChatMessage | None,
    *,
    at_ms: int,
    windows: ChangeWindows,
    admin: bool,
) -> ChangeRefusal | None:
    """Why ``change`` (accepted at ``at_ms``) may not be applied to ``target`` (the stored
    message, ``None`` if unknown), or ``None`` when it may. ``admin``: the actor administers the
    group the message is in (may delete anyone's message for everyone). Membership of the
    conversation is checked by the caller."""
    if target is None or target.conversation_id != change.conversation_id:
        return NOT_FOUND
    if target.target_type == "user" and change.actor_id not in (target.sender_id, target.target_id):
        return NOT_FOUND  # not one of the two: for them the conversation does not exist
    if target.kind != "message":
        return ChangeRefusal("invalid", f"a {target.kind} entry cannot be changed, only messages")
    kind = entry_kind(change)
    if kind == "delete_for_me":
        return None  # anything you can see you can remove from your own view
    if target.status in ("recalled", "deleted"):
        return ChangeRefusal("invalid", f"the message was {target.status}")
    age_ms = at_ms - target.sent_at_ms
    if kind == "edit":
        if change.actor_id != target.sender_id:
            return ChangeRefusal("forbidden", "only the sender can edit a message")
        if target.message_type != "text":
            return ChangeRefusal("invalid", f"only text messages can be edited, not {target.message_type}")
        if age_ms > windows.edit_ms:
            return ChangeRefusal("too_late", f"messages can be edited for {windows.edit_ms // 1000} s after sending")
    elif kind == "recall":
        if change.actor_id != target.sender_id:
            return ChangeRefusal("forbidden", "only the sender can recall a message")
        if age_ms > windows.recall_ms:
            return ChangeRefusal(
                "too_late", f"messages can be recalled for {windows.recall_ms // 1000} s after sending"
            )
    elif kind == "delete" and change.actor_id != target.sender_id and not admin:
        return ChangeRefusal("forbidden", "only the sender or a group admin can delete a message for everyone")
    return None


def changed_target(change: MessageChange, target: ChatMessage, *, seq: int, at_ms: int) -> ChatMessage | None:
    """The changed message's row after ``change`` (entry ``seq``), or ``None`` when its row does
    not change (delete for me, reactions: they are rows of their own)."""
    kind = entry_kind(change)
    if kind == "edit":
        assert isinstance(change, MessageEdited)
        return replace(
            target,
            payload=change.payload,
            mentions=change.mentions,
            status="edited",
            edited_at_ms=at_ms,
            changed_seq=seq,
        )
    if kind in ("recall", "delete"):
        status = "recalled" if kind == "recall" else "deleted"
        return replace(target, payload="", mentions=(), status=status, changed_seq=seq)
    return None


def change_entry(change: MessageChange, target: ChatMessage, *, seq: int, at_ms: int, stored_at_ms: int) -> ChatMessage:
    """The change entry as stored. Its payload is empty except for reactions (the emoji): the
    content of an edit lives in the changed message only, so a recall removes it everywhere
    (see :func:`announced_entry` for the entry as pushed)."""
    if target.target_type == "user":  # the conversation's other party, seen from the actor
        other = target.target_id if change.actor_id == target.sender_id else target.sender_id
    else:
        other = target.target_id
    return ChatMessage(
        message_id=change.change_id,
        conversation_id=change.conversation_id,
        seq=seq,
        sender_id=change.actor_id,
        target_type=target.target_type,
        target_id=other,
        message_type="text",
        payload=change.emoji if isinstance(change, MessageReacted) else "",
        client_msg_id=change.client_msg_id,
        sent_at_ms=at_ms,
        stored_at_ms=stored_at_ms,
        kind=entry_kind(change),
        relates_to=target.message_id,
    )


def announced_entry(entry: ChatMessage, target: ChatMessage | None) -> ChatMessage:
    """The entry as fanned out and pushed: an edit carries the changed message's content while
    that edit is the message's latest change (so the push shows the new text without a read);
    otherwise the entry as stored."""
    if entry.kind == "edit" and target is not None and target.changed_seq == entry.seq and target.status == "edited":
        return replace(entry, payload=target.payload, mentions=target.mentions)
    return entry


def group_administrators(group: Group | None) -> frozenset[str]:
    """The owner and admins of a stored group (nobody for an unknown one): they may delete
    anyone's message for everyone."""
    if group is None:
        return frozenset()
    return frozenset({group.owner_id, *getattr(group, "admin_ids", ())})
