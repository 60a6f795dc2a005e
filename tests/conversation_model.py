"""A small reference model of the conversation list (issue 15), for the model-based integration
test: what every user's rows and unread counts must be after a sequence of operations, each
applied in the order the user's ``chat.inbox`` partition sees it.

It restates the rules of docs/protocol.md on its own (it imports nothing of ``chat_events``):

* A message gets the next seq of its conversation; every member gets (or keeps) a row whose
  ``last_seq`` is the highest seq, and a new message shows a removed (hidden) row again.
* ``unread`` counts the messages from *others* with seq above ``read_seq``.
* The sender's own message marks the conversation read up to it.
* A read moves ``read_seq`` to the edge-accepted seq (the asked seq clamped to the last *stored*
  seq when the edge took it: :meth:`ConversationModel.clamp_bounds`), never backwards; a read,
  or a flag change, of a conversation the user has no row of yet changes nothing.
* Flags (pinned, muted, hidden) are per user; ``None`` leaves a flag as it is.
* "Mark everything read" reads each of the user's rows up to its last seq.
* The total unread count leaves muted conversations out; the group count is the same for
  groups only; the per-conversation counts list every row with unread messages, muted included.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

DM_PREFIX = "dm:"


def dm_id(a: str, b: str) -> str:
    """The canonical id of the 1:1 conversation of ``a`` and ``b``."""
    low, high = sorted((a, b))
    return f"{DM_PREFIX}{low}:{high}"


@dataclass(frozen=True, slots=True)
class Row:
    """One user's view of one conversation (the fields the model decides)."""

    last_seq: int = 0
    read_seq: int = 0
    unread: int = 0
    pinned: bool = False
    muted: bool = False
    hidden: bool = False


@dataclass(frozen=True, slots=True)
class Unread:
    total: int
    groups: int
    conversations: dict[str, int]


@dataclass
class ConversationModel:
    """Conversations (id -> members), their messages (senders, in seq order) and the rows."""

    members: dict[str, frozenset[str]]
    senders: dict[str, list[str | None]] = field(default_factory=dict)
    """Per conversation, the sender of each seq; None for a system message (a group change)."""
    rows: dict[tuple[str, str], Row] = field(default_factory=dict)

    def last_seq(self, conversation_id: str) -> int:
        return len(self.senders.get(conversation_id, ()))

    def row(self, user: str, conversation_id: str) -> Row | None:
        return self.rows.get((user, conversation_id))

    def _unread(self, user: str, conversation_id: str, read_seq: int) -> int:
        senders = self.senders.get(conversation_id, [])
        return sum(1 for seq, sender in enumerate(senders, 1) if seq > read_seq and sender not in (user, None))

    def system(self, conversation_id: str) -> int:
        """A group's system message ("alice created the group"): it takes the next seq and moves
        every member's ``last_seq`` to it (a row for a member who had none), but counts as no
        one's unread, reads nothing and shows no removed row again. Returns its seq."""
        self.senders.setdefault(conversation_id, []).append(None)
        seq = self.last_seq(conversation_id)
        for user in self.members[conversation_id]:
            row = self.rows.get((user, conversation_id), Row())
            self.rows[(user, conversation_id)] = replace(row, last_seq=seq)
        return seq

    def send(self, sender: str, conversation_id: str) -> int:
        """A message from ``sender``; returns its seq."""
        members = self.members[conversation_id]
        assert sender in members, (sender, conversation_id)
        self.senders.setdefault(conversation_id, []).append(sender)
        seq = self.last_seq(conversation_id)
        for user in members:
            row = self.rows.get((user, conversation_id), Row())
            read_seq = max(row.read_seq, seq) if user == sender else row.read_seq
            self.rows[(user, conversation_id)] = replace(
                row,
                last_seq=seq,
                read_seq=read_seq,
                unread=self._unread(user, conversation_id, read_seq),
                hidden=False,
            )
        return seq

    def clamp_bounds(self, conversation_id: str, seq: int, *, known_stored: int) -> tuple[int, int]:
        """The range the edge's accepted read seq must lie in: ``seq`` clamped to the last stored
        seq, which is at least ``known_stored`` (a seq someone was already delivered) and at most
        the last seq sent."""
        return min(seq, known_stored), min(seq, self.last_seq(conversation_id))

    def read(self, user: str, conversation_id: str, accepted_seq: int) -> None:
        """A read the edge accepted at ``accepted_seq`` (already clamped)."""
        assert accepted_seq <= self.last_seq(conversation_id), (accepted_seq, conversation_id)
        row = self.rows.get((user, conversation_id))
        if row is None or accepted_seq <= row.read_seq:
            return
        self.rows[(user, conversation_id)] = replace(
            row, read_seq=accepted_seq, unread=self._unread(user, conversation_id, accepted_seq)
        )

    def set_flags(
        self,
        user: str,
        conversation_id: str,
        *,
        pinned: bool | None = None,
        muted: bool | None = None,
        hidden: bool | None = None,
    ) -> None:
        row = self.rows.get((user, conversation_id))
        if row is None:
            return
        self.rows[(user, conversation_id)] = replace(
            row,
            pinned=row.pinned if pinned is None else pinned,
            muted=row.muted if muted is None else muted,
            hidden=row.hidden if hidden is None else hidden,
        )

    def read_all(self, user: str) -> None:
        for (owner, conversation_id), row in list(self.rows.items()):
            if owner == user:
                self.read(user, conversation_id, row.last_seq)

    def rows_of(self, user: str) -> dict[str, Row]:
        return {conv: row for (owner, conv), row in self.rows.items() if owner == user}

    def unread_of(self, user: str) -> Unread:
        rows = {conv: row for conv, row in self.rows_of(user).items() if row.unread > 0}
        total = sum(r.unread for r in rows.values() if not r.muted)
        groups = sum(r.unread for c, r in rows.items() if not r.muted and not c.startswith(DM_PREFIX))
        return Unread(total, groups, {c: r.unread for c, r in rows.items()})
