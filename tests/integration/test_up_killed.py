"""``up`` killed with SIGKILL takes its children with it: the broker (the embedded one, or real
Kafka and Cassandra), the worker and the edge stop (nothing is left holding ports beside a second
``up``, which the kernel-released lock would let start). Real processes; Linux (the children are
found in /proc)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from chat_events.engines.process import port_accepts
from tests.integration.edge_harness import free_port
from tests.integration.test_up_and_chat import launch_up, stop_up, wait_for
from tests.real_engines import skip_or_fail, unavailable_reason

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a live process; None once it is gone (or only a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = raw[raw.rindex(")") + 2 :].split()[:2]
    return None if state in ("Z", "X") else (state, int(ppid))


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None and stat[1] == pid:
            found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return ""


@pytest.mark.parametrize("stack", ["embedded", "kafka-cassandra"])
def test_up_killed_with_sigkill_leaves_no_child_running_and_frees_the_ports(stack: str, tmp_path: Path) -> None:
    """The JVMs start on threads that end once they are ready: they must outlive those threads."""
    if stack != "embedded" and (reason := unavailable_reason()) is not None:
        skip_or_fail(reason)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    edge_port = free_port()
    env.update(CHAT_DATA_DIR=str(tmp_path / "data"), CHAT_EDGE_PORT=str(edge_port))
    log = tmp_path / "up.log"
    up = launch_up(stack, env, log, "--cql-port", "0")
    children: list[int] = []
    try:
        wait_for(log, "chat-events is up", up, 240)
        state = "embedded-broker.json" if stack == "embedded" else "kafka-broker.json"
        broker = json.loads((tmp_path / "data" / state).read_text())
        ports = [
            edge_port,
            *(
                int(p)
                for p in re.findall(
                    r"CHAT_(?:KAFKA_BOOTSTRAP_SERVERS|CASSANDRA_CONTACT_POINTS)=\S+:(\d+)", log.read_text()
                )
            ),
        ]
        children = _children(up.pid)
        commands = [_cmdline(pid) for pid in children]
        assert broker["pid"] in children, commands
        assert any(c.endswith(" worker ") for c in commands) and any(c.endswith(" edge ") for c in commands), commands
        assert len(children) == (3 if stack == "embedded" else 4), commands
        assert len(ports) == (2 if stack == "embedded" else 3) and all(port_accepts(port) for port in ports), ports

        os.kill(up.pid, signal.SIGKILL)
        up.wait(10)

        deadline = time.monotonic() + 120
        while (alive := [pid for pid in children if _stat(pid) is not None]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive, f"still running after up was killed: {[_cmdline(pid) for pid in alive]}"
        assert not any(port_accepts(port) for port in ports), ports
    finally:
        stop_up(up)
        for pid in children:  # never leave orphans behind, whatever failed
            if _stat(pid) is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
