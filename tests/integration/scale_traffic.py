"""Chat traffic for the scale-out tests: devices spread over edges, concurrent sends, and what
every device and the store must hold afterwards.

A :class:`Device` is one user's device: a :class:`ChatClient` on one edge, a task collecting
what :meth:`ChatClient.receive` releases, and the raw ``message`` pushes each socket carried
(the client drops repeats by seq, so only the raw pushes show whether an edge pushed twice).
A device moved to another edge (its edge was killed) keeps its deliveries and resumes from its
``last_seq``, as a real client would.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chat_events.client import ChatClient, ConnectionLost, Delivery, HttpApi
from chat_events.client.connection import Connection
from chat_events.client.frames import OutputFrame
from chat_events.client.models import TargetType
from chat_events.store.port import MessageStore
from tests.integration.edge_harness import EdgeProcess
from tests.integration.store_checks import conversation_rows, inbox_rows

MOVE_WAIT_S = 60.0
"""How long a send that lost its edge waits for the test to move its device to another one."""


class CountingClient(ChatClient):
    """A :class:`ChatClient` that also records the user seq of every ``message`` push, per socket."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pushes: dict[int, list[int]] = defaultdict(list)

    def _on_push(self, conn: Connection, frame: OutputFrame) -> None:
        if frame.type == "message" and frame.ok:
            self.pushes[id(conn)].append(int(frame.data["user_seq"]))
        super()._on_push(conn, frame)


async def token_of(edge: EdgeProcess, user: str) -> str:
    async with HttpApi(edge.http) as api:
        return (await api.dev_token(user)).token


@dataclass
class Device:
    user: str
    name: str
    edge: EdgeProcess
    client: CountingClient | None = None
    got: list[Delivery] = field(default_factory=list)
    sockets: list[list[int]] = field(default_factory=list)
    """The user seqs pushed on each socket this device had (closed ones included)."""
    moved: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    async def connect(self, edge: EdgeProcess) -> None:
        last_seq = self.client.last_seq if self.client is not None else 0
        self.edge = edge
        client = CountingClient(
            edge.http, token=await token_of(edge, self.user), device_id=self.name, last_seq=last_seq
        )
        await client.connect()
        self.client = client
        self._reader = asyncio.ensure_future(self._read(client))

    async def _read(self, client: CountingClient) -> None:
        with contextlib.suppress(ConnectionLost):
            while True:
                self.got.append(await client.receive())

    async def move_to(self, edge: EdgeProcess) -> None:
        """Reconnect on ``edge`` from the last seq received (the old edge is gone)."""
        await self.close()
        await self.connect(edge)
        self.moved.set()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self.client is not None:
            await self.client.close()
            self.sockets.extend(self.client.pushes.values())
            self.client.pushes.clear()

    def all_sockets(self) -> list[list[int]]:
        live = list(self.client.pushes.values()) if self.client is not None else []
        return self.sockets + live


@dataclass(frozen=True)
class Send:
    """One message to send: the sending device, the target, and a fixed nonce (retries reuse it)."""

    device: Device
    target_type: TargetType
    target_id: str
    content: str
    nonce: str


@dataclass
class Ledger:
    """What was answered: message id -> conversation, and who must receive it."""

    conversation_of: dict[str, str] = field(default_factory=dict)
    recipients_of: dict[str, set[str]] = field(default_factory=dict)
    answered: int = 0
    retried: int = 0
    """Sends retried on another edge after their device's edge was lost."""

    def expected_by_user(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = defaultdict(set)
        for mid, users in self.recipients_of.items():
            for user in users:
                out[user].add(mid)
        return out

    def expected_by_conversation(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = defaultdict(set)
        for mid, conversation in self.conversation_of.items():
            out[conversation].add(mid)
        return out


async def send_all(sends: list[Send], audience: dict[str, set[str]], ledger: Ledger) -> None:
    """Every send, one sequential stream per sending device, all devices at once. ``audience``:
    target id -> the users who must receive (a 1:1 target: the pair; a group: its members).
    A send whose device lost its edge is retried, with the same nonce, once the device moved."""
    by_device: dict[int, list[Send]] = defaultdict(list)
    for send in sends:
        by_device[id(send.device)].append(send)

    async def stream(queue: list[Send]) -> None:
        for send in queue:
            while True:
                device = send.device
                assert device.client is not None
                try:
                    result = await device.client.send(
                        send.target_type, send.target_id, send.content, client_msg_id=send.nonce
                    )
                    break
                except ConnectionLost as lost:
                    ledger.retried += 1
                    try:  # a device whose edge is not being replaced never moves
                        await asyncio.wait_for(device.moved.wait(), MOVE_WAIT_S)
                    except TimeoutError:
                        raise AssertionError(f"{device.user}/{device.name} lost its edge: {lost}") from lost
            ledger.conversation_of[result.message_id] = result.conversation_id
            ledger.recipients_of[result.message_id] = audience[send.target_id] | {device.user}
            ledger.answered += 1

    await asyncio.gather(*(stream(queue) for queue in by_device.values()))


def nonce() -> str:
    return str(uuid.uuid4())


def check_device(device: Device, expected: set[str], ledger: Ledger) -> None:
    """Every message of the user once, in user seq order (dense from 1), each conversation in
    its seq order; no socket carried a user seq twice."""
    seqs = [d.user_seq for d in device.got]
    where = f"{device.user}/{device.name}"
    assert seqs == list(range(1, len(expected) + 1)), f"{where}: user seqs {seqs}"
    ids = [d.message["message_id"] for d in device.got]
    assert len(set(ids)) == len(ids) and set(ids) == expected, f"{where}: not every message once"
    last: dict[str, int] = {}
    for d in device.got:
        conversation = ledger.conversation_of[d.message["message_id"]]
        assert d.conversation_id == conversation
        assert d.message["seq"] > last.get(conversation, 0), f"{where}: {conversation} out of seq order"
        last[conversation] = d.message["seq"]
    for pushed in device.all_sockets():
        assert len(pushed) == len(set(pushed)), f"{where}: a socket got a user seq pushed twice: {pushed}"


async def check_store(store: MessageStore, ledger: Ledger) -> None:
    """Each conversation's messages stored once with dense seqs; each user's inbox holds each of
    their messages once, user seqs dense, conversation seqs ascending per conversation."""
    seq_of: dict[str, int] = {}
    for conversation, expected in ledger.expected_by_conversation().items():
        rows = await conversation_rows(store, conversation)
        ids = [m.message_id for m in rows]
        assert len(ids) == len(set(ids)) and set(ids) == expected, conversation
        assert [m.seq for m in rows] == list(range(1, len(rows) + 1)), conversation
        seq_of.update((m.message_id, m.seq) for m in rows)
    for user, expected in ledger.expected_by_user().items():
        entries = await inbox_rows(store, user)
        ids = [e.message_id for e in entries]
        assert len(ids) == len(set(ids)) and set(ids) == expected, user
        assert [e.user_seq for e in entries] == list(range(1, len(entries) + 1)), user
        last: dict[str, int] = {}
        for e in entries:
            assert e.conversation_seq == seq_of[e.message_id]
            assert e.conversation_seq > last.get(e.conversation_id, 0), user
            last[e.conversation_id] = e.conversation_seq


ASSIGNED = re.compile(r": (\S+): assigned partitions \[([\d, ]*)\] of (\S+)")


def assignments(log: Path) -> dict[str, set[int]]:
    """Each stage topic's partitions a worker holds now: the last assignment its log reports
    (the runners log every assignment at INFO)."""
    held: dict[str, set[int]] = {}
    for match in ASSIGNED.finditer(log.read_text(errors="replace")):
        numbers = match.group(2).replace(",", " ").split()
        held[match.group(3)] = {int(n) for n in numbers}
    return held
