"""A tiny process supervisor for ``chat-events up``: start children, forward their output with a
prefix, restart one that crashes (with backoff, a bounded number of times), and stop them all
in order on Ctrl-C.

Children run in their own sessions, so a terminal's Ctrl-C reaches only the supervisor, which
then stops them one by one (the edge first, so it can announce its sessions' ends while the
worker and broker still run), each with SIGTERM and, after a grace period, SIGKILL. If the
supervisor itself dies, its children stop too: each is told its pid (``CHAT_PARENT_PID``) and
follows it (:mod:`chat_events.lifeline`).

A child is ready when it printed its ready line and, if it has a ``ready_check``, once that
check passes (the edge: its own ``/readyz`` answers 200). A child that exits with
:data:`EXIT_CONFIG` cannot start as configured (e.g. its port is in use): it is not restarted,
everything stops.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from chat_events.lifeline import PARENT_PID_ENV, spawn

MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
EXIT_CONFIG = 78
"""The exit status of a child that cannot start as configured (sysexits' EX_CONFIG): a restart
would fail the same way."""


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    ready_marker: str | None = None
    """A line fragment the child prints once it is ready."""
    ready_check: Callable[[Child], bool] | None = None
    """Asked (repeatedly) after the ready line: True once the child really is ready."""
    ready_line: str | None = None
    """The line that carried :attr:`ready_marker`."""
    proc: subprocess.Popen[str] | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    restarts: list[float] = field(default_factory=list)


class Supervisor:
    def __init__(self, children: Sequence[Child], *, out: TextIO = sys.stdout, grace_s: float = 20.0) -> None:
        self.children = list(children)
        self._out = out
        self._grace_s = grace_s
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    def say(self, line: str) -> None:
        with self._lock:
            self._out.write(line if line.endswith("\n") else line + "\n")
            self._out.flush()

    def start(self, child: Child) -> None:
        child.ready.clear()
        env = {**child.env, PARENT_PID_ENV: str(os.getpid())}  # the child follows us (lifeline)
        child.proc = spawn(
            lambda: subprocess.Popen(
                list(child.argv),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                start_new_session=True,
            )
        )
        threading.Thread(target=self._forward, args=(child, child.proc), daemon=True).start()

    def _forward(self, child: Child, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if child.ready_marker and child.ready_marker in line:
                child.ready_line = line
                child.ready.set()
            self.say(f"[{child.name}] {line.rstrip()}")

    def start_all(self) -> None:
        for child in self.children:
            self.start(child)

    def wait_ready(self, timeout_s: float) -> bool:
        """Whether every child became ready (its line, then its check) within ``timeout_s``;
        False at once if one exits meanwhile or :attr:`stopping` is set."""
        deadline = time.monotonic() + timeout_s
        for child in self.children:
            while not (child.ready.wait(0.2) and _check(child)):
                if self.stopping.is_set() or time.monotonic() > deadline:
                    return False
                if any(c.proc is not None and c.proc.poll() is not None for c in self.children):
                    return False  # one exited (e.g. the edge's port is in use): not waiting for the others
                if child.ready.is_set():  # its line came, its check did not pass yet
                    self.stopping.wait(0.2)
        return True

    def supervise(self, on_restart: Callable[[Child], None] | None = None) -> int:
        """Watch the children until :attr:`stopping` is set; 0 then. A child that keeps crashing
        (more than MAX_RESTARTS in RESTART_WINDOW_S) ends everything with 1."""
        while not self.stopping.wait(0.5):
            for child in self.children:
                proc = child.proc
                if proc is None or proc.poll() is None:
                    continue
                if self.stopping.is_set():
                    break
                if proc.returncode == EXIT_CONFIG:
                    self.say(f"{child.name} cannot start as configured (see its error above); stopping everything")
                    return 1
                now = time.monotonic()
                child.restarts = [t for t in child.restarts if now - t < RESTART_WINDOW_S]
                if len(child.restarts) >= MAX_RESTARTS:
                    self.say(f"{child.name} keeps exiting (code {proc.returncode}); stopping everything")
                    return 1
                child.restarts.append(now)
                delay = min(10.0, 0.5 * 2 ** (len(child.restarts) - 1))
                self.say(f"{child.name} exited with code {proc.returncode}; restarting in {delay:.1f}s")
                if self.stopping.wait(delay):
                    break
                self.start(child)
                if on_restart is not None:
                    on_restart(child)
        return 0

    def stop_all(self) -> None:
        """SIGTERM each child in reverse start order and wait for it (SIGKILL after the grace)."""
        self.stopping.set()
        for child in reversed(self.children):
            proc = child.proc
            if proc is None or proc.poll() is not None:
                continue
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(self._grace_s)
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop in {self._grace_s:.0f}s; killing it")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def _check(child: Child) -> bool:
    if child.ready_check is None:
        return True
    try:
        return child.ready_check(child)
    except Exception:  # not answering yet
        return False
