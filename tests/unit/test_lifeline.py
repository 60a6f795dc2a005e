"""Children die with the process that started them (chat_events.lifeline): real processes, no
broker. A "middle" process starts the child and is then SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from chat_events.lifeline import PARENT_PID_ENV, _watchers, parent_gone, popen_tied, release

PY = sys.executable
linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def _alive(pid: int) -> bool:
    """Running (a zombie, never reaped by this container's init, counts as gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return raw[raw.rindex(")") + 2] not in "ZX"


def _wait_gone(pid: int, timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _middle(code: str) -> tuple[subprocess.Popen[str], int]:
    """Run ``code`` in a middle process; it prints its child's pid."""
    middle = subprocess.Popen([PY, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True)
    assert middle.stdout is not None
    return middle, int(middle.stdout.readline())


def _kill(middle: subprocess.Popen[str], child: int) -> None:
    middle.kill()
    middle.wait(10)
    if _alive(child):
        os.kill(child, signal.SIGKILL)


def test_a_parent_is_gone_once_its_child_was_reparented() -> None:
    assert not parent_gone(4242, 4242)
    assert parent_gone(4242, 1)


@linux_only
def test_a_child_forked_for_a_short_lived_thread_survives_the_thread_and_dies_with_the_process() -> None:
    """PDEATHSIG fires when the forking *thread* exits: popen_tied forks on a long-lived one."""
    middle, child = _middle(
        """
        import threading, time
        from chat_events.lifeline import popen_tied
        def start():
            print(popen_tied(["sleep", "120"], start_new_session=True).pid, flush=True)
        thread = threading.Thread(target=start)
        thread.start()
        thread.join()
        time.sleep(120)
        """
    )
    try:
        time.sleep(1.0)  # the thread that asked for it is gone by now
        assert _alive(child)
        middle.kill()
        middle.wait(10)
        assert _wait_gone(child)
    finally:
        _kill(middle, child)


@linux_only
@pytest.mark.parametrize("prctl", ["on", "off"])
def test_a_python_child_follows_its_parent_with_pdeathsig_or_by_watching_its_parent_pid(prctl: str) -> None:
    child_code = (
        "import time, chat_events.lifeline as lifeline\n"
        + ("lifeline._PRCTL = None\n" if prctl == "off" else "")  # the portable fallback alone
        + "lifeline.follow_parent()\n"
        + "time.sleep(120)\n"
    )
    middle, child = _middle(
        f"""
        import os, subprocess, sys, time
        env = {{**os.environ, {PARENT_PID_ENV!r}: str(os.getpid())}}
        print(subprocess.Popen([sys.executable, "-c", {child_code!r}], env=env, start_new_session=True).pid, flush=True)
        time.sleep(120)
        """
    )
    try:
        time.sleep(1.0)
        assert _alive(child)
        middle.kill()
        middle.wait(10)
        assert _wait_gone(child)
    finally:
        _kill(middle, child)


@linux_only
def test_without_pdeathsig_a_watcher_stops_a_non_python_child_when_its_parent_dies() -> None:
    middle, child = _middle(
        """
        import time, chat_events.lifeline as lifeline
        lifeline._PRCTL = None  # the portable fallback alone
        print(lifeline.popen_tied(["sleep", "120"]).pid, flush=True)
        time.sleep(120)
        """
    )
    try:
        time.sleep(1.0)
        assert _alive(child)
        middle.kill()
        middle.wait(10)
        assert _wait_gone(child)
    finally:
        _kill(middle, child)


def test_a_released_watcher_leaves_without_a_signal() -> None:
    child = popen_tied(["sleep", "120"], watcher=True)
    try:
        watcher = _watchers[child.pid]
        release(child.pid)
        assert watcher.wait(30) == 0 and child.poll() is None  # the child was not signalled
    finally:
        child.kill()
        child.wait(10)


def test_a_python_child_whose_parent_died_before_it_armed_stops_at_once() -> None:
    env = {**os.environ, PARENT_PID_ENV: "1" if os.getpid() != 1 else "2"}  # not our parent
    code = "import time\nfrom chat_events.lifeline import follow_parent\nfollow_parent()\ntime.sleep(120)\n"
    proc = subprocess.run([PY, "-c", code], env=env, timeout=60)
    assert proc.returncode == -signal.SIGTERM
