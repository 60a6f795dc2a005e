"""Decisions of the conversation-list events (pure): the next version of a user's rows, whether
a read or a flag change changes anything, and who gets a read receipt.

Versions: every change of a user's conversation rows gets a version strictly above every
version the writer gave that user before, and at least the writer's clock in microseconds. The
writer is the single owner of the user's ``chat.inbox`` partition; a new owner (a rebalance, a
restart) continues above what it reads of the rows it touches, and its clock keeps it above the
rest unless its clock is behind the previous owner's by more than the time since the last change
(documented in docs/protocol.md: a client that sees ``version`` go backwards lists afresh).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from chat_events.events.conversation_events import ConversationFlagsSet
from chat_events.events.conversations import DIRECT_PREFIX
from chat_events.store.models import ConversationState, InboxEntry


def next_version(now_us: int, previous: int) -> int:
    """A version above ``previous`` and at least ``now_us``."""
    return max(now_us, previous + 1)


def read_changes(row: ConversationState | None, read_seq: int) -> bool:
    """Whether reading up to ``read_seq`` moves the row's read position (a replayed, older or
    equal read changes nothing; a conversation the user has no row of has nothing to read)."""
    return row is not None and read_seq > row.read_seq


def read_all_targets(
    rows: Sequence[ConversationState], up_to_user_seq: int, later: Sequence[InboxEntry]
) -> list[tuple[ConversationState, int]]:
    """What "mark everything read" up to the user's inbox seq ``up_to_user_seq`` reads: per row,
    the conversation seq to read up to, by conversation id; rows with nothing to read left out.

    ``later``: the user's inbox entries after ``up_to_user_seq`` (the messages that arrived after
    the edge accepted it, or, on a replay, everything since). A row with none of them is read to
    its last seq; one with some is read to just before the first of them (a conversation's
    messages reach an inbox in conversation order), so they stay unread."""
    first_later: dict[str, int] = {}
    for entry in later:
        if entry.user_seq > up_to_user_seq:
            seq = first_later.get(entry.conversation_id)
            first_later[entry.conversation_id] = (
                entry.conversation_seq if seq is None else min(seq, entry.conversation_seq)
            )
    out = []
    for row in sorted(rows, key=lambda r: r.conversation_id):
        target = row.last_seq if row.conversation_id not in first_later else first_later[row.conversation_id] - 1
        if target > row.read_seq:
            out.append((row, target))
    return out


def flags_after(row: ConversationState, event: ConversationFlagsSet) -> ConversationState | None:
    """The row after ``event``'s flags, or ``None`` when it changes nothing (a replay, or the
    flags as they are). ``hidden=true`` does not hide a row with a message past the event's
    ``up_to_user_seq``: that message arrived after the remove and shows the conversation again
    (a replayed remove after it must not hide it once more)."""
    hide = event.hidden
    if hide and row.last_user_seq > event.up_to_user_seq:
        hide = None
    new = replace(
        row,
        pinned=row.pinned if event.pinned is None else event.pinned,
        muted=row.muted if event.muted is None else event.muted,
        hidden=row.hidden if hide is None else hide,
    )
    return None if (new.pinned, new.muted, new.hidden) == (row.pinned, row.muted, row.hidden) else new


def receipt_recipients(
    conversation_id: str, reader_id: str, group_members: frozenset[str] | None, *, max_group: int
) -> list[str]:
    """Who learns that ``reader_id`` read ``conversation_id``: the peer of a 1:1 conversation; the
    other members of a group of at most ``max_group`` members (``group_members``: its members,
    ``None`` for a 1:1 conversation); nobody in larger groups, where receipts would cost a push to
    every member per read."""
    if conversation_id.startswith(DIRECT_PREFIX):
        low, high = conversation_id[len(DIRECT_PREFIX) :].split(":", 1)
        peer = high if low == reader_id else low
        return [] if peer == reader_id else [peer]
    members = group_members or frozenset()
    if len(members) > max_group or reader_id not in members:
        return []
    return sorted(members - {reader_id})


DELIVERED_MARK = "*"
"""The pseudo-device whose stored progress is a user's highest ack over all devices (the
delivered watermark): no device id can be ``*`` (ids start with a letter or digit)."""


def delivered_watermarks(entries: Sequence[InboxEntry], user_id: str) -> dict[str, tuple[int, tuple[str, ...]]]:
    """What newly acked inbox ``entries`` of ``user_id`` (ascending user seq) deliver: per
    conversation, the highest conversation seq now on at least one of the user's devices, and
    the senders to tell (everyone but the user; a conversation's messages reach a user's inbox in
    conversation order, so every message of it up to that seq has arrived)."""
    out: dict[str, tuple[int, set[str]]] = {}
    for entry in entries:
        if entry.sender_id == user_id:
            continue
        seq, senders = out.get(entry.conversation_id, (0, set()))
        senders.add(entry.sender_id)
        out[entry.conversation_id] = (max(seq, entry.conversation_seq), senders)
    return {conv: (seq, tuple(sorted(senders))) for conv, (seq, senders) in sorted(out.items())}
