"""Operations on the conversation list and a driver that applies them to the real system (edges,
broker, worker, store) and to the reference model (tests/conversation_model.py) side by side.

Three users, each with one device; four conversations: the three 1:1s and one group of all
three. An operation names a user and one of *that user's* three conversations (``conv``: 0 and 1
the 1:1s with the other two, 2 the group), so every generated operation is allowed.

Ordering, so that the model's order is the order each user's ``chat.inbox`` partition sees:
sends are awaited one at a time (their answer means Kafka has them, and one conversation is one
partition of ``chat.personal-chat``, so seqs follow the order sent). Reads race with the
messages in flight (the edge's clamp and the stage's recount make the outcome independent of
that race), but wait for the reader's first message of the conversation, so that its row exists
when the read is applied. A flag change waits until the user has every message sent so far in
that conversation, and "mark everything read" every message of all the user's conversations:
what a client acts on is what it has shown (a hide racing a message still in flight has two
right answers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from chat_events.client import ChatClient, Delivery, HttpApi
from tests.conversation_model import ConversationModel, Row, Unread, dm_id


@dataclass(frozen=True)
class Send:
    user: int
    conv: int


@dataclass(frozen=True)
class Read:
    user: int
    conv: int
    seq: int


@dataclass(frozen=True)
class Flags:
    user: int
    conv: int
    pinned: bool | None
    muted: bool | None
    hidden: bool | None


@dataclass(frozen=True)
class ReadAll:
    user: int


@dataclass(frozen=True)
class Restart:
    """The worker stopped and started again (``kill``: SIGKILL, else SIGTERM). ``settled``: only
    once every message sent so far reached every member (so a replay meets newer state)."""

    kill: bool
    settled: bool


Op = Send | Read | Flags | ReadAll | Restart

USERS = st.integers(0, 2)
CONVS = st.integers(0, 2)
FLAG = st.sampled_from([None, True, False])


def ops(*, restarts: Sequence[Restart], min_size: int = 12, max_size: int = 24) -> st.SearchStrategy[list[Op]]:
    """Op sequences, sends three times as likely as anything else; ``restarts``: those a sequence may
    hold (exactly one of them, mid-stream: after ``min_size // 2`` to ``min_size`` ops)."""
    flags = st.builds(Flags, USERS, CONVS, FLAG, FLAG, FLAG).filter(
        lambda f: (f.pinned, f.muted, f.hidden) != (None, None, None)
    )
    one: st.SearchStrategy[Op] = st.one_of(
        st.builds(Send, USERS, CONVS),
        st.builds(Send, USERS, CONVS),
        st.builds(Send, USERS, CONVS),
        st.builds(Read, USERS, CONVS, st.integers(0, 8)),
        flags,
        st.builds(ReadAll, USERS),
    )
    plain = st.lists(one, min_size=min_size, max_size=max_size)
    if not restarts:
        return plain
    return st.tuples(plain, st.sampled_from(list(restarts)), st.integers(min_size // 2, min_size)).map(
        lambda t: [*t[0][: t[2]], t[1], *t[0][t[2] :]]
    )


@dataclass
class Received:
    """What one user's device was delivered: conversation -> seq -> message id."""

    seqs: dict[str, dict[int, str]] = field(default_factory=dict)

    def add(self, delivery: Delivery) -> None:
        message = delivery.message
        self.seqs.setdefault(message["conversation_id"], {})[int(message["seq"])] = message["message_id"]


@dataclass
class Driver:
    """One example: its users (fresh ids), their clients and HTTP APIs, the model, and what each
    device received (filled by a background reader per client)."""

    users: list[str]
    group_id: str
    clients: list[ChatClient]
    apis: list[HttpApi]
    restart: Callable[[Restart], Awaitable[None]]
    model: ConversationModel = field(init=False)
    received: list[Received] = field(init=False)
    group_created: int = field(init=False)
    sent: dict[str, tuple[str, int]] = field(default_factory=dict)
    """message id -> (conversation id, the seq the model gave it)."""
    _progress: asyncio.Condition = field(default_factory=asyncio.Condition)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        members = {
            self.conversation(u, k): frozenset({self.users[u], self.peer(u, k)}) for u in range(3) for k in (0, 1)
        }
        members[self.group_id] = frozenset(self.users)
        self.model = ConversationModel(members)
        self.group_created = self.model.system(self.group_id)  # the group's groupCreated system message
        self.received = [Received() for _ in self.users]
        self._readers = [asyncio.ensure_future(self._read(i)) for i in range(len(self.clients))]

    def peer(self, user: int, conv: int) -> str:
        return self.users[[i for i in range(3) if i != user][conv]]

    def conversation(self, user: int, conv: int) -> str:
        return self.group_id if conv == 2 else dm_id(self.users[user], self.peer(user, conv))

    async def _read(self, i: int) -> None:
        while True:
            delivery = await self.clients[i].receive()
            if delivery.message.get("kind") == "system":  # its place is the model's (see __post_init__)
                self.sent[delivery.message["message_id"]] = (self.group_id, self.group_created)
            async with self._progress:
                self.received[i].add(delivery)
                self._progress.notify_all()

    async def until(self, check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout), self._progress:
                await self._progress.wait_for(check)
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None

    def has_all(self, user: int, conversation_id: str) -> bool:
        got = self.received[user].seqs.get(conversation_id, {})
        return all(seq in got for seq in range(1, self.model.last_seq(conversation_id) + 1))

    def known_stored(self, conversation_id: str) -> int:
        return max((max(r.seqs.get(conversation_id, {0: ""})) for r in self.received), default=0)

    async def apply(self, op: Op) -> None:
        if isinstance(op, Restart):
            if op.settled:
                await self.settle_messages()
            await self.restart(op)
            return
        if isinstance(op, ReadAll):
            convs = [self.conversation(op.user, k) for k in range(3)]
            await self.until(lambda: all(self.has_all(op.user, c) for c in convs), f"{op}'s messages")
            await self.clients[op.user].read_all()
            self.model.read_all(self.users[op.user])
            return
        user, conv = self.users[op.user], self.conversation(op.user, op.conv)
        client = self.clients[op.user]
        if isinstance(op, Send):
            content = f"m{len(self.sent)}"
            if op.conv == 2:
                result = await client.send("group", conv, content)
            else:
                result = await client.send("user", self.peer(op.user, op.conv), content)
            self.sent[result.message_id] = (conv, self.model.send(user, conv))
        elif isinstance(op, Read):
            if self.model.last_seq(conv):
                await self.until(lambda: bool(self.received[op.user].seqs.get(conv)), f"a message before {op}")
            low, high = self.model.clamp_bounds(conv, op.seq, known_stored=self.known_stored(conv))
            accepted = await client.read(conv, op.seq)
            assert low <= accepted <= high, f"{op}: accepted {accepted}, expected {low}..{high}"
            self.model.read(user, conv, accepted)
        else:
            await self.until(lambda: self.has_all(op.user, conv), f"the messages before {op}")
            await client.set_conversation(conv, pinned=op.pinned, muted=op.muted, hidden=op.hidden)
            self.model.set_flags(user, conv, pinned=op.pinned, muted=op.muted, hidden=op.hidden)

    async def settle_messages(self) -> None:
        """Every member has every message, each at the seq the model gave it."""
        convs = list(self.model.members)
        await self.until(
            lambda: all(self.has_all(self.users.index(u), c) for c in convs for u in self.model.members[c]),
            "every message at every member",
        )
        for i, received in enumerate(self.received):
            for conv, seqs in received.seqs.items():
                for seq, message_id in seqs.items():
                    assert self.sent[message_id] == (conv, seq), f"{self.users[i]} got {message_id} at {seq}"

    async def observed(self) -> tuple[dict[str, dict[str, Row]], dict[str, Unread]]:
        """Every user's rows (removed ones included) and unread counts, as the HTTP API answers."""
        rows: dict[str, dict[str, Row]] = {}
        unread: dict[str, Unread] = {}
        for user, api in zip(self.users, self.apis, strict=True):
            page = await api.conversation_page(since_version=0, limit=200)
            assert not page["has_more"]
            rows[user] = {r["conversation_id"]: _row(r) for r in page["conversations"]}
            counts = await api.unread()
            unread[user] = Unread(counts["total"], counts["groups"], counts["conversations"])
        return rows, unread

    def expected(self) -> tuple[dict[str, dict[str, Row]], dict[str, Unread]]:
        return (
            {u: self.model.rows_of(u) for u in self.users},
            {u: self.model.unread_of(u) for u in self.users},
        )

    async def check(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Poll the HTTP API until it answers what the model says (reads and flags change rows
        after their answer, and a change that changes nothing sends no push to wait for)."""
        await self.settle_messages()
        expected = self.expected()
        deadline = asyncio.get_running_loop().time() + timeout
        while (observed := await self.observed()) != expected:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(_diff(observed, expected))
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        for client in self.clients:
            await client.close()
        for api in self.apis:
            await api.aclose()


def _row(data: dict[str, Any]) -> Row:
    return Row(
        last_seq=data["last_seq"],
        read_seq=data["read_seq"],
        unread=data["unread"],
        pinned=data["pinned"],
        muted=data["muted"],
        hidden=data["hidden"],
    )


def _diff(observed: tuple[dict[str, Any], dict[str, Any]], expected: tuple[dict[str, Any], dict[str, Any]]) -> str:
    lines = []
    for kind, got, want in (("rows", observed[0], expected[0]), ("unread", observed[1], expected[1])):
        for user in want:
            if got.get(user) != want[user]:
                lines.append(f"{kind} of {user}:\n  system {got.get(user)}\n  model  {want[user]}")
    return "the system differs from the model:\n" + "\n".join(lines)
