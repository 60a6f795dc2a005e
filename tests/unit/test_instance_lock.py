"""One instance per data directory: the lock of ``up`` and ``broker``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from chat_events.instance_lock import Holder, InstanceLock, InstanceRunning, read_holder, refusal


def test_a_second_lock_is_refused_naming_the_running_instance(tmp_path: Path) -> None:
    first = InstanceLock(tmp_path / "data", "up").acquire(url="http://127.0.0.1:8000")
    try:
        with pytest.raises(InstanceRunning) as refused:
            InstanceLock(tmp_path / "data", "up").acquire()
        message = str(refused.value)
        assert f"pid {os.getpid()}" in message and "http://127.0.0.1:8000" in message
        assert "chat-events up is already running" in message and str(tmp_path / "data") in message
        assert refused.value.code == "instance_running"
        with pytest.raises(InstanceRunning):
            InstanceLock(tmp_path / "data", "broker").acquire()  # one lock for every command that takes it
    finally:
        first.release()
    again = InstanceLock(tmp_path / "data", "broker").acquire()  # released: the next one may start
    again.release()


def test_the_url_is_recorded_once_known(tmp_path: Path) -> None:
    with InstanceLock(tmp_path, "up") as lock:
        assert read_holder(tmp_path) == Holder("up", os.getpid(), read_holder(tmp_path).started_at)  # type: ignore[union-attr]
        lock.update(url="http://127.0.0.1:8123")
        holder = read_holder(tmp_path)
        assert holder is not None and holder.url == "http://127.0.0.1:8123"
    assert read_holder(tmp_path) is None  # released: nobody named


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from chat_events.instance_lock import InstanceLock; "
        "InstanceLock(Path(sys.argv[1]), 'up').acquire(); print('locked', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(InstanceRunning, match=f"pid {holder.pid}"):
            InstanceLock(tmp_path, "up").acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    InstanceLock(tmp_path, "up").acquire().release()  # the kernel released it with the process


def test_refusal_names_what_to_do() -> None:
    holder = Holder("broker", 42, "2026-01-01 10:00:00", None)
    text = refusal(Path("/d"), holder, "up")
    assert text.startswith("chat-events broker is already running (pid 42, since 2026-01-01 10:00:00) in /d")
    assert "CHAT_DATA_DIR" in text and "Ctrl-C" in text
    assert refusal(Path("/d"), None, "up").startswith("another chat-events instance is starting in /d")


def test_an_unreadable_lock_file_names_nobody() -> None:
    assert Holder.parse("") is None and Holder.parse("{}") is None and Holder.parse("[1]") is None
