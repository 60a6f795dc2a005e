"""The store's invariants after a run, read through the store port (either adapter): nothing
lost, nothing stored or delivered twice, no seq reused or skipped. The port has no "list
everything", so they are read per conversation and per user the test sent to (it knows them)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from chat_events.events.conversations import direct_conversation_id
from chat_events.events.types import ChatMessage
from chat_events.store.models import InboxEntry
from chat_events.store.port import MessageStore

PAGE = 500


async def conversation_rows(store: MessageStore, conversation_id: str) -> list[ChatMessage]:
    """Every stored message of one conversation, in seq order (paged)."""
    out: list[ChatMessage] = []
    while True:
        after = out[-1].seq if out else 0
        page = await store.conversation_messages(conversation_id, after_seq=after, limit=PAGE)
        out += page.items
        if not page.has_more or not page.items:
            return out


async def inbox_rows(store: MessageStore, user_id: str) -> list[InboxEntry]:
    """Every inbox entry of one user, in user seq order (paged)."""
    out: list[InboxEntry] = []
    while True:
        page = await store.inbox_after(user_id, out[-1].user_seq if out else 0, limit=PAGE)
        out += page.items
        if not page.has_more or not page.items:
            return out


async def check_invariants(store: MessageStore, sent: dict[str, tuple[str, str]]) -> None:
    """``sent``: message id -> (sender, recipient) of every message ACKed by the broker."""
    expected_in: dict[str, set[str]] = defaultdict(set)  # conversation -> its message ids
    for mid, (sender, recipient) in sent.items():
        expected_in[direct_conversation_id(sender, recipient)].add(mid)
    conversation_seq: dict[str, int] = {}
    for conversation, expected in expected_in.items():
        messages = await conversation_rows(store, conversation)
        ids = [m.message_id for m in messages]
        assert len(ids) == len(set(ids)) == len(expected), conversation  # each stored once, none lost
        assert set(ids) == expected, conversation
        seqs = [m.seq for m in messages]
        assert seqs == list(range(1, len(seqs) + 1)), conversation  # conversation seqs: dense, none reused
        conversation_seq.update((m.message_id, m.seq) for m in messages)
    maxima = await store.max_conversation_seqs(expected_in)
    assert maxima == {c: len(ids) for c, ids in expected_in.items()}
    found = await store.find_messages(sent)  # the message-id lookup agrees with the conversation
    assert {mid: m.seq for mid, m in found.items()} == conversation_seq

    expected_inbox: dict[str, set[str]] = defaultdict(set)  # user -> message ids: sender and recipient
    for mid, pair in sent.items():
        for user in pair:
            expected_inbox[user].add(mid)
    for user, expected in expected_inbox.items():
        rows = await inbox_rows(store, user)
        mids = [e.message_id for e in rows]
        assert len(mids) == len(set(mids)) == len(expected), user  # one entry per message: none twice, none lost
        assert set(mids) == expected, user
        assert [e.user_seq for e in rows] == list(range(1, len(rows) + 1)), user  # user seqs dense from 1
        last: dict[str, int] = {}
        for e in rows:
            assert e.conversation_seq == conversation_seq[e.message_id]
            assert e.conversation_seq > last.get(e.conversation_id, 0)  # per conversation, inbox order = seq order
            last[e.conversation_id] = e.conversation_seq
    assert await store.max_user_seqs(expected_inbox) == {u: len(ids) for u, ids in expected_inbox.items()}


async def inbox_count(store: MessageStore, users: Iterable[str]) -> int:
    """Inbox entries of ``users`` so far (their highest user seqs: dense, so the count)."""
    return sum((await store.max_user_seqs(users)).values())
