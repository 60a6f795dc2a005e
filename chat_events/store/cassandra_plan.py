"""The pure decisions of the Cassandra store: buckets, which rows of a write are new and which
conflict with stored ones, the two steps of a save (rows, then commit), how writes are packed
into UNLOGGED batches and how key pairs are covered by ``IN ?`` requests. No IO.

Why batches are packed: one request per row costs the worker far more than a row inside a batch
(``CassandraStore`` docstring), and Cassandra rejects a batch above ``batch_size_fail_threshold``
(50 KiB by default). Writes are therefore *units* (a row of step one; a user's commit in step
two, whose statements share one partition key and so apply as one mutation), packed into
batches of at most :data:`BATCH_BUDGET_BYTES`; a unit is never split.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chat_events.errors import SeqConflictError
from chat_events.events.types import ChatMessage
from chat_events.store.models import ConversationState, InboxEntry

BUCKET_SIZE = 1000
"""Seqs per partition of ``messages`` (per conversation) and ``inbox`` (per user)."""

BATCH_BUDGET_BYTES = 24 * 1024
"""Estimated payload per batch (Cassandra measured ~1.5 times :func:`write_size` for inbox rows):
well under its default fail threshold (50 KiB)."""

Write = tuple[str, tuple[Any, ...]]
"""One statement of a batch: the name of a prepared statement and its values."""


def bucket(seq: int) -> int:
    """The partition bucket of a conversation seq or a user seq: ``seq // BUCKET_SIZE``."""
    return seq // BUCKET_SIZE


def buckets_up(first_seq: int, last_seq: int) -> range:
    """Buckets holding seqs ``first_seq..last_seq`` in ascending order (empty if none)."""
    if last_seq < first_seq:
        return range(0)
    return range(bucket(max(first_seq, 0)), bucket(last_seq) + 1)


def buckets_down(last_seq: int) -> range:
    """Buckets holding seqs ``last_seq..0`` in descending order (empty if ``last_seq < 0``)."""
    return range(bucket(last_seq), -1, -1) if last_seq >= 0 else range(0)


def write_size(write: Write) -> int:
    """A rough serialized size of one statement in a batch."""
    size = 16
    for value in write[1]:
        if isinstance(value, str):
            size += len(value.encode()) + 4
        elif isinstance(value, list | tuple):
            size += sum(len(str(item).encode()) + 4 for item in value) + 4
        else:
            size += 8
    return size


def pack(units: Iterable[Sequence[Write]], budget: int = BATCH_BUDGET_BYTES) -> list[list[Write]]:
    """Units packed, in order, into batches of at most ``budget`` estimated bytes (a unit larger
    than the budget gets a batch of its own)."""
    batches: list[list[Write]] = []
    current: list[Write] = []
    used = 0
    for unit in units:
        size = sum(write_size(w) for w in unit)
        if current and used + size > budget:
            batches.append(current)
            current, used = [], 0
        current.extend(unit)
        used += size
    if current:
        batches.append(current)
    return batches


def cover(pairs: Iterable[tuple[Any, Any]], limit: int) -> list[tuple[list[Any], list[Any]]]:
    """Requests ``(as, bs)`` whose cartesian products cover every pair ``(a, b)``, each product
    at most ``limit`` combinations (for ``WHERE a IN ? AND b IN ?`` on a two-column partition
    key, which Cassandra reads as the cartesian product). The ``b``s are grouped by the exact set
    of ``a``s they go with (no waste: a 1:1 conversation's messages all go with its two users,
    a group message with the recipients on this partition), then groups are merged greedily
    while the merged product stays within ``limit``: fewer requests for a few combinations
    nobody asked for, which cost the server a probe each. A single ``a`` with more ``b``s than
    ``limit`` (or the reverse) is split into chunks."""
    by_b: dict[Any, set[Any]] = {}
    for a, b in pairs:
        by_b.setdefault(b, set()).add(a)
    groups: dict[frozenset[Any], list[Any]] = {}
    for b, partners in by_b.items():
        groups.setdefault(frozenset(partners), []).append(b)
    chunks: list[tuple[list[Any], list[Any]]] = []
    for a_set, bs in groups.items():
        a_list = sorted(a_set, key=str)
        for a_start in range(0, len(a_list), limit):
            a_part = a_list[a_start : a_start + limit]
            step = max(1, limit // len(a_part))
            for b_start in range(0, len(bs), step):
                chunks.append((a_part, bs[b_start : b_start + step]))
    chunks.sort(key=lambda c: len(c[0]) * len(c[1]))
    merged: list[tuple[list[Any], list[Any]]] = []
    current_a: dict[Any, None] = {}
    current_b: dict[Any, None] = {}
    for a_part, b_part in chunks:
        a_union = current_a | dict.fromkeys(a_part)
        b_union = current_b | dict.fromkeys(b_part)
        if current_b and len(a_union) * len(b_union) > limit:
            merged.append((list(current_a), list(current_b)))
            a_union, b_union = dict.fromkeys(a_part), dict.fromkeys(b_part)
        current_a, current_b = a_union, b_union
    if current_b:
        merged.append((list(current_a), list(current_b)))
    return merged


@dataclass(frozen=True, slots=True)
class StoredMessages:
    """What the store holds for the messages of one ``save_messages`` call."""

    by_id: Mapping[str, tuple[str, int]]
    """Committed message id -> (conversation_id, seq) (``messages_by_id``)."""
    at_seq: Mapping[tuple[str, int], str]
    """(conversation_id, seq) -> message id of the ``messages`` row there (committed or not)."""
    by_client: Mapping[tuple[str, str], str]
    """(sender_id, client_msg_id) -> message id (``messages_by_client_id``, committed)."""
    max_seqs: Mapping[str, int]
    """Highest committed seq per conversation (``conversation_seqs``)."""


def new_messages(messages: Sequence[ChatMessage], stored: StoredMessages) -> list[ChatMessage]:
    """The messages that still have to be written, in order; raises :class:`SeqConflictError`
    like the embedded store (which handles the same list one message after the other).

    A ``messages`` row at a seq above the conversation's committed maximum is left over from a
    write that crashed before its commit batch: it does not take the seq.
    """
    placed = dict(stored.by_id)
    taken = {key: mid for key, mid in stored.at_seq.items() if key[1] <= stored.max_seqs.get(key[0], 0)}
    clients = dict(stored.by_client)
    out: list[ChatMessage] = []
    for m in messages:
        place = (m.conversation_id, m.seq)
        have = placed.get(m.message_id)
        if have is not None:
            if have != place:
                raise SeqConflictError(f"message {m.message_id} is stored at {have}, not {place}")
            continue
        holder = taken.get(place)
        if holder is not None and holder != m.message_id:
            raise SeqConflictError(f"{place} is taken by message {holder}")
        if m.client_msg_id:
            owner = clients.setdefault((m.sender_id, m.client_msg_id), m.message_id)
            if owner != m.message_id:
                raise SeqConflictError(f"client_msg_id {m.client_msg_id} of {m.sender_id} is message {owner}")
        placed[m.message_id] = place
        taken[place] = m.message_id
        out.append(m)
    return out


def message_writes(new: Sequence[ChatMessage], row: Callable[[ChatMessage], Write]) -> list[list[Write]]:
    """Step one of saving ``new`` messages, one unit per row: the ``messages`` row (``row``),
    its ``messages_by_id`` row and its ``messages_by_client_id`` row. None of them is visible
    before step two raises the conversation's maximum over its seq (:func:`conversation_commits`)."""
    units: list[list[Write]] = []
    for m in new:
        units.append([row(m)])
        units.append([("by_id_insert", (m.message_id, m.conversation_id, m.seq))])
        if m.client_msg_id:
            units.append([("by_client_insert", (m.sender_id, m.client_msg_id, m.message_id, m.conversation_id, m.seq))])
    return units


def conversation_commits(new: Sequence[ChatMessage], max_seqs: Mapping[str, int]) -> list[list[Write]]:
    """Step two: per conversation, ``conversation_seqs`` raised to the highest seq of ``new`` in
    it (only where that raises the stored maximum). One row each, so each is applied whole; after
    step one every seq up to it is written, so whatever subset lands commits a dense prefix."""
    top: dict[str, int] = {}
    for m in new:
        top[m.conversation_id] = max(top.get(m.conversation_id, 0), m.seq)
    return [
        [("conv_seq_set", (conversation_id, seq))]
        for conversation_id, seq in sorted(top.items())
        if seq > max_seqs.get(conversation_id, 0)
    ]


def new_inbox_entries(
    entries: Sequence[InboxEntry], by_message: Mapping[tuple[str, str], int], at_seq: Mapping[tuple[str, int], str]
) -> list[InboxEntry]:
    """The entries still to write, in order. A stored ``(user, message)`` with the same user seq
    is a replay (skipped); with another seq, or a user seq held by another message, it is a
    :class:`SeqConflictError` (the worker's counters are stale)."""
    seqs = dict(by_message)
    holders = dict(at_seq)
    out: list[InboxEntry] = []
    for e in entries:
        have = seqs.get((e.user_id, e.message_id))
        if have is not None:
            if have != e.user_seq:
                raise SeqConflictError(f"{e.message_id} is user seq {have} of {e.user_id}, not {e.user_seq}")
            continue
        holder = holders.get((e.user_id, e.user_seq))
        if holder is not None and holder != e.message_id:
            raise SeqConflictError(f"user seq {e.user_seq} of {e.user_id} is taken by {holder}")
        seqs[(e.user_id, e.message_id)] = e.user_seq
        holders[(e.user_id, e.user_seq)] = e.message_id
        out.append(e)
    return out


def merge_conversation(stored: ConversationState | None, incoming: ConversationState) -> ConversationState | None:
    """The row an inbox write leaves: the incoming activity and unread count, ``read_seq`` never
    backwards, pinned/muted kept (they are the user's own settings), hidden and version as the
    writer gives them (a new message shows the conversation again). ``None`` when the row is
    new and is written whole."""
    if stored is None:
        return None
    return ConversationState(
        user_id=incoming.user_id,
        conversation_id=incoming.conversation_id,
        last_message_id=incoming.last_message_id,
        last_seq=incoming.last_seq,
        last_user_seq=incoming.last_user_seq,
        last_activity_ms=incoming.last_activity_ms,
        read_seq=max(stored.read_seq, incoming.read_seq),
        unread=incoming.unread,
        pinned=stored.pinned,
        muted=stored.muted,
        hidden=incoming.hidden,
        version=max(stored.version, incoming.version),
        unread_mentions=incoming.unread_mentions,
    )
