"""What the README promises a newcomer: ``chat-events up`` starts the whole system, two
``chat-events chat`` terminals talk to each other, and Ctrl-C stops everything cleanly — on the
embedded stack, and on ``--stack kafka-cassandra`` (real Kafka and Cassandra started by ``up``
itself, the messages rows in Cassandra). Real processes, real ports, nothing shared with the
other tests (own engines and data directory)."""

from __future__ import annotations

import asyncio
import http.server
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chat_events.settings import Settings
from chat_events.store.factory import open_store
from tests.integration.edge_harness import free_port
from tests.real_engines import skip_or_fail, unavailable_reason

COMMAND = [sys.executable, "-m", "chat_events.cli.main"]


def wait_for(path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not seen in {timeout}s (exit {proc.poll()}):\n{path.read_text()[-3000:]}")


def launch_up(stack: str, env: dict[str, str], log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """``chat-events up --stack STACK --port 0 EXTRA...`` in a session of its own, output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [*COMMAND, "up", "--stack", stack, "--port", "0", *extra],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_up(up: subprocess.Popen[bytes]) -> None:
    """Ctrl-C if still running: up stops its children (in sessions of their own, a kill would
    orphan them); a kill only if it does not stop in time."""
    if up.poll() is None:
        os.killpg(up.pid, signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait(10)


@pytest.fixture(params=["embedded", "kafka-cassandra"])
def system(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, dict[str, str], subprocess.Popen[bytes], Path]]:
    stack, engine = request.param.split("+") if "+" in request.param else (request.param, "native")
    if stack != "embedded" and (reason := unavailable_reason()) is not None:
        skip_or_fail(reason)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    edge_port = free_port()
    env.update(
        CHAT_DATA_DIR=str(tmp_path / "data"),
        CHAT_EMBEDDED_BROKER_PORT=str(free_port()),
        CHAT_EDGE_PORT=str(edge_port),
        CHAT_WORKER_ENGINE=engine,  # `CHAT_WORKER_ENGINE=faust chat-events up`: up's children inherit it
    )
    log = tmp_path / "up.log"
    up = launch_up(stack, env, log, "--cql-port", "0")
    try:
        wait_for(log, "chat-events is up", up, 240)
        yield f"http://127.0.0.1:{edge_port}", env, up, log
    finally:
        stop_up(up)


def chat(env: dict[str, str], url: str, me: str, to: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [*COMMAND, "chat", "--as", me, "--to", to, "--url", url],
            env=env,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.parametrize(
    "system",
    ["embedded", "kafka-cassandra", *(f"{stack}+faust" for stack in ("embedded", "kafka-cassandra"))],
    indirect=True,
)
def test_up_then_two_terminals_chat_and_ctrl_c_stops_everything(
    system: tuple[str, dict[str, str], subprocess.Popen[bytes], Path], tmp_path: Path
) -> None:
    url, env, up, up_log = system
    assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200  # "is up" means ready
    alice = chat(env, url, "alice", "bob", tmp_path / "alice.log")
    bob = chat(env, url, "bob", "alice", tmp_path / "bob.log")
    try:
        wait_for(tmp_path / "alice.log", "signed in as alice", alice, 30)
        wait_for(tmp_path / "bob.log", "signed in as bob", bob, 30)
        assert alice.stdin is not None and bob.stdin is not None
        alice.stdin.write(b"hello bob\n")
        alice.stdin.flush()
        wait_for(tmp_path / "bob.log", "alice: hello bob", bob, 30)
        bob.stdin.write(b"hi alice\n")
        bob.stdin.flush()
        wait_for(tmp_path / "alice.log", "bob: hi alice", alice, 30)
        contact = re.search(r"CHAT_CASSANDRA_CONTACT_POINTS=(\S+)", up_log.read_text())
        if contact is not None:  # kafka-cassandra: the conversation is rows in Cassandra
            assert asyncio.run(_payloads_in(Settings(cassandra_contact_points=contact.group(1)))) == [
                "hello bob",
                "hi alice",
            ]
        for proc in (alice, bob):
            assert proc.stdin is not None
            proc.stdin.write(b"/quit\n")
            proc.stdin.flush()
            assert proc.wait(30) == 0
    finally:
        for proc in (alice, bob):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    os.killpg(up.pid, signal.SIGINT)  # Ctrl-C in the terminal reaches the whole process group
    assert up.wait(60) == 0, up_log.read_text()[-3000:]
    assert "stopped" in up_log.read_text()
    assert "Traceback" not in up_log.read_text(), up_log.read_text()[-3000:]


async def _payloads_in(settings: Settings) -> list[str]:
    async with open_store(settings) as store:
        page = await store.conversation_messages("dm:alice:bob", after_seq=0, limit=10)
        return [message.payload for message in page.items]


def run_briefly(argv: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """Run a command expected to end by itself; one that does not is stopped as Ctrl-C would (so
    it stops its own children) and its exit code is then whatever that gave."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        out += "\n(still running after the timeout: stopped)"
    return proc.returncode, out


@pytest.mark.parametrize("system", ["embedded"], indirect=True)
def test_a_second_up_in_the_same_data_directory_is_refused_and_touches_nothing(
    system: tuple[str, dict[str, str], subprocess.Popen[bytes], Path], tmp_path: Path
) -> None:
    """What the "port in use" hint leads to: ``up --port 0`` in the same directory. It names the
    running instance and exits at once; the first one's files and live sessions are untouched."""
    url, env, up, _ = system
    state_file = Path(env["CHAT_DATA_DIR"]) / "embedded-broker.json"
    state = state_file.read_text()
    alice = chat(env, url, "alice", "bob", tmp_path / "alice.log")
    bob: subprocess.Popen[bytes] | None = None
    try:
        wait_for(tmp_path / "alice.log", "signed in as alice", alice, 30)
        second = [*COMMAND, "up", "--stack", "embedded", "--port", "0", "--edge-port", "0"]
        code, out = run_briefly(second, env)
        assert code == 1, out
        assert f"chat-events up is already running (pid {up.pid}, {url}," in out, out
        assert env["CHAT_DATA_DIR"] in out and "Traceback" not in out
        assert state_file.read_text() == state  # publish/consume of this directory still find the broker
        bob = chat(env, url, "bob", "alice", tmp_path / "bob.log")
        wait_for(tmp_path / "bob.log", "signed in as bob", bob, 30)
        assert bob.stdin is not None
        bob.stdin.write(b"still there?\n")
        bob.stdin.flush()
        wait_for(tmp_path / "alice.log", "bob: still there?", alice, 30)  # alice's session was not ended
    finally:
        for proc in (alice, bob):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)


class _SomebodyElses(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_: object) -> None:
        pass


def test_up_with_its_edge_port_in_use_is_a_clear_error_at_once(tmp_path: Path) -> None:
    """Not "is up" with the URL of somebody else's server: an error naming the flag, before
    anything is started."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SomebodyElses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env.update(CHAT_DATA_DIR=str(tmp_path / "data"), CHAT_EMBEDDED_BROKER_PORT="0", CHAT_EDGE_PORT=str(port))
    try:
        code, out = run_briefly([*COMMAND, "up", "--stack", "embedded"], env)
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1, out
    assert f"port {port} (edge) is already in use; pick another with --edge-port" in out, out
    assert "chat-events is up" not in out and "Traceback" not in out
    assert not (tmp_path / "data" / "embedded-broker.json").exists()  # no broker was started
