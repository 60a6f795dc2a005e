"""``chat-events chat`` and ``chat-events group`` as a new user runs them: real processes against a
real edge (uvicorn on a real port) and a real worker on the stack's broker and store, checked by
what they print. One worker and one edge serve the module; each test uses its own users; the
connection-loss test runs its own edge (it kills it)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chat_events.client import ChatClient, Delivery, HttpApi
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.settings import Settings
from tests.conftest import make_settings
from tests.integration.edge_harness import EdgeProcess
from tests.integration.worker_harness import WorkerProcess, settings_env, wait_until

COMMAND = [sys.executable, "-m", "chat_events.cli.main"]
LATE = "(an earlier message arrived late"


@dataclass
class System:
    settings: Settings
    edge: EdgeProcess
    tmp: Path
    chats: list[Chat] = field(default_factory=list)

    def cli(self, *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*COMMAND, *args, "--url", url or self.edge.http],
            env=settings_env(self.settings),
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    def chat(self, me: str, *target: str, url: str | None = None) -> Chat:
        log = self.tmp / f"chat-{me}-{uuid.uuid4().hex[:4]}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*COMMAND, "chat", "--as", me, *target, "--url", url or self.edge.http],
                env=settings_env(self.settings),
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        chat = Chat(proc, log)
        self.chats.append(chat)
        return chat


@dataclass
class Chat:
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def lines(self) -> list[str]:
        return self.text().splitlines()

    def type(self, *lines: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(f"{line}\n" for line in lines).encode())
        self.proc.stdin.flush()

    def wait_for(self, text: str, count: int = 1, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.text().count(text) >= count:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{text!r} x{count} not printed in {timeout}s (exit {self.proc.poll()}):\n{self.text()}")

    def quit(self) -> int:
        self.type("/quit")
        return self.proc.wait(60)


@pytest.fixture(scope="module")
async def system(kafka_target: KafkaTarget, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    tmp = tmp_path_factory.mktemp("chat-cli")
    settings = make_settings(
        kafka_target,
        tmp,
        worker_app_id=f"w-{uuid.uuid4().hex[:8]}",
        edge_heartbeat_timeout_ms=2000,
        edge_heartbeat_interval_ms=300,
    )
    await ensure_topics(settings, kafka_target)
    worker = WorkerProcess(settings, tmp / "worker.log")
    edge = EdgeProcess(settings, tmp / "edge.log")
    worker.start()
    edge.start()
    try:
        yield System(settings, edge, tmp)
    finally:
        edge.stop()
        worker.stop()


@pytest.fixture
def sys_(system: System) -> Iterator[System]:
    """The module's system; the chats a test started are killed after it."""
    yield system
    for chat in system.chats:
        if chat.proc.poll() is None:
            chat.proc.kill()
            chat.proc.wait(10)
    system.chats.clear()


def uid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def conversation_lines(lines: list[str], users: tuple[str, ...]) -> list[str]:
    """The messages as the screen shows them at the end: a re-render (after a ``LATE`` line)
    replaces the tail it repeats. Only ``[time] user: text`` lines of ``users`` count."""
    shown: list[str] = []
    rerender: list[str] | None = None
    for line in lines:
        if line.startswith(LATE):
            rerender = []
            continue
        if not any(f"] {user}: " in line for user in users):
            continue
        text = line.split("] ", 1)[1]
        if rerender is None:
            shown.append(text)
            continue
        rerender.append(text)
        if len(rerender) > 1 and rerender[-1] == shown[-1]:  # the tail is complete
            shown = shown[: len(shown) - (len(rerender) - 1)] + rerender
            rerender = None
    return shown


async def client(url: str, user: str, device: str) -> ChatClient:
    async with HttpApi(url) as api:
        token = (await api.dev_token(user)).token
    chat = ChatClient(url, token=token, device_id=device)
    await chat.connect()
    return chat


async def receive_until(chat: ChatClient, content: str, timeout: float = 60) -> list[Delivery]:  # noqa: ASYNC109
    seen: list[Delivery] = []
    async with asyncio.timeout(timeout):
        while not any(d.content == content for d in seen):
            seen.append(await chat.receive())
    return seen


def test_groups_are_made_with_the_cli_and_chat_checks_the_group_at_start(sys_: System) -> None:
    alice, bob, carol, dave = uid("alice"), uid("bob"), uid("carol"), uid("dave")
    team = uid("team")
    created = sys_.cli("group", "create", team, "--owner", alice, "--members", f"{bob}, {alice}")
    assert created.returncode == 0, created.stdout + created.stderr
    assert f"created group {team}" in created.stdout and f"members {alice}, {bob}" in created.stdout

    again = sys_.cli("group", "create", team, "--owner", carol)
    assert again.returncode == 1 and f"error: group {team} exists" in again.stdout
    shown = sys_.cli("group", "show", team, "--as", bob)
    assert shown.returncode == 0 and f"owner {alice}; members {alice}, {bob}" in shown.stdout
    missing = sys_.cli("group", "show", "no-such-group", "--as", alice)
    hidden = "no such group, or you are not a member"  # a missing group and a stranger's: one answer
    assert missing.returncode == 1 and f"may not do that in group no-such-group: {hidden}" in missing.stdout
    refused = sys_.cli("group", "add", team, carol, "--as", dave)
    assert refused.returncode == 1 and f"{dave} may not do that in group {team}: {hidden}" in refused.stdout
    invalid = sys_.cli("group", "create", uid("g"), "--owner", alice, "--members", "not a valid id")
    assert invalid.returncode == 2 and "error: invalid input: member_ids" in invalid.stdout

    # chat --group fails at start, not at the first send
    stranger = sys_.chat(carol, "--group", team)
    assert stranger.proc.wait(60) == 1
    assert f"no group {team}, or {carol} is not a member of it" in stranger.text()
    assert "signed in" not in stranger.text()
    nowhere = sys_.chat(alice, "--group", "no-such-group")
    assert nowhere.proc.wait(60) == 1 and f"error: no group no-such-group, or {alice} is not a member" in nowhere.text()

    added = sys_.cli("group", "add", team, carol, "--as", bob)
    assert added.returncode == 0 and f"{carol} added to group {team}" in added.stdout
    alice_chat, carol_chat = sys_.chat(alice, "--group", team), sys_.chat(carol, "--group", team)
    alice_chat.wait_for(f"signed in as {alice}")
    carol_chat.wait_for(f"signed in as {carol}")
    carol_chat.type("hello team")
    alice_chat.wait_for(f"{carol}: hello team")
    carol_chat.wait_for(f"{carol}: hello team")  # our own, printed at its delivery

    removed = sys_.cli("group", "remove", team, carol, "--as", alice)
    assert removed.returncode == 0 and f"{carol} removed from group {team}" in removed.stdout
    carol_chat.type("still here?")
    carol_chat.wait_for("! not sent [FORBIDDEN 8]: still here?")
    assert alice_chat.quit() == 0 and carol_chat.quit() == 0
    assert "still here?" not in alice_chat.text()


async def test_two_chats_print_one_order_and_own_messages_elsewhere_are_not_new(sys_: System) -> None:
    alice, bob, carol = uid("alice"), uid("bob"), uid("carol")
    alice_chat, bob_chat = sys_.chat(alice, "--to", bob), sys_.chat(bob, "--to", alice)
    alice_chat.wait_for(f"signed in as {alice}")
    bob_chat.wait_for(f"signed in as {bob}")
    alice_chat.type(*(f"a{i}" for i in range(6)))
    bob_chat.type(*(f"b{i}" for i in range(6)))
    for chat in (alice_chat, bob_chat):
        for i in range(6):
            chat.wait_for(f"{alice}: a{i}")
            chat.wait_for(f"{bob}: b{i}")
    seen_by_alice = conversation_lines(alice_chat.lines(), (alice, bob))
    seen_by_bob = conversation_lines(bob_chat.lines(), (alice, bob))
    assert sorted(seen_by_alice) == sorted([*(f"{alice}: a{i}" for i in range(6)), *(f"{bob}: b{i}" for i in range(6))])
    assert seen_by_alice == seen_by_bob, f"alice:\n{alice_chat.text()}\nbob:\n{bob_chat.text()}"
    dm = f"dm:{min(alice, bob)}:{max(alice, bob)}"

    async def read_to_the_end(user: str) -> bool:  # the chat reads what it shows
        async with HttpApi(sys_.edge.http) as api:
            api.token = (await api.dev_token(user)).token
            row = await api.conversation(dm)
        return bool(row["read_seq"] == 12 and row["unread"] == 0)

    for user in (alice, bob):
        await wait_until(lambda user=user: read_to_the_end(user), what=f"{user} read {dm} to the end")  # type: ignore[misc]

    async def elsewhere() -> None:
        other_device, carols = await client(sys_.edge.http, alice, "phone"), await client(sys_.edge.http, carol, "d")
        try:
            await other_device.send("user", carol, "from my phone")
            await receive_until(carols, "from my phone")
            await carols.send("user", alice, "hi alice")
        finally:
            await other_device.close()
            await carols.close()

    await elsewhere()
    conversation = f"dm:{min(alice, carol)}:{max(alice, carol)}"
    alice_chat.wait_for(f"new message in {conversation}")
    assert alice_chat.quit() == 0 and bob_chat.quit() == 0
    assert alice_chat.text().count(f"new message in {conversation}") == 1, alice_chat.text()


def test_the_chat_shows_a_lost_connection_pending_sends_and_the_reconnect(sys_: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    edge = EdgeProcess(sys_.settings, sys_.tmp / "edge-killed.log", name="edge-killed")
    edge.start()
    try:
        alice_chat = sys_.chat(alice, "--to", bob, url=edge.http)
        bob_chat = sys_.chat(bob, "--to", alice)  # on the module's edge
        alice_chat.wait_for(f"signed in as {alice}")
        bob_chat.wait_for(f"signed in as {bob}")
        edge.kill9()
        alice_chat.wait_for("(connection lost: ")
        alice_chat.wait_for("(still reconnecting, attempt 1 failed")
        alice_chat.type("sent while down")
        alice_chat.wait_for("... pending: sent while down")
        edge.start()
        alice_chat.wait_for("(reconnected to edge edge-killed-")
        bob_chat.wait_for(f"{alice}: sent while down")
        alice_chat.wait_for(f"{alice}: sent while down")
        assert alice_chat.quit() == 0 and bob_chat.quit() == 0
        assert "not sent" not in alice_chat.text()
    finally:
        edge.stop()
