"""Children that die with the process that started them, however it dies.

``up`` runs the broker, the JVMs, the worker and the edge in sessions of their own (so a
terminal's Ctrl-C reaches only ``up``, which stops them in order). If ``up`` itself is killed
(SIGKILL, OOM), nothing would stop them: they would keep their ports, and with ``up``'s instance
lock released by the kernel a second ``up`` could start beside them. So:

* **Linux: PR_SET_PDEATHSIG(SIGTERM).** The kernel sends it when the *thread* that forked the
  child exits, not the process: every fork goes through :func:`spawn`, which runs it on the main
  thread or on one long-lived spawner thread, never on a short-lived one (``up`` starts Kafka and
  Cassandra on threads that end once they are ready). Non-Python children (Tansu, the JVMs) get it
  from :func:`popen_tied`'s ``preexec_fn``, between fork and exec (it survives exec). Python
  children (the worker, the edge) arm it themselves at start (:func:`follow_parent`, called by
  ``main`` when :data:`PARENT_PID_ENV` is set), without a ``preexec_fn`` (unsafe in a process with
  threads, as the supervisor is).
* **Both kinds** check, once armed, that their parent is still the one that started them: a
  parent that died between fork and prctl would never send the signal.
* **Python children, portable fallback:** a thread notices ``os.getppid()`` change (an orphan is
  re-parented) and, where PDEATHSIG is not available, sends SIGTERM to its own process (its
  graceful stop). Either way, one whose stop still runs :data:`STOP_GRACE_S` later exits hard.
* **Non-Python children, portable fallback** (where PDEATHSIG is not available): a watcher,
  ``python -m chat_events.lifeline PGID``, blocks on a pipe whose write end only this process
  holds. The kernel closes it however we die: at EOF the watcher sends SIGTERM to the child's
  process group and SIGKILL after :data:`STOP_GRACE_S`. :func:`release` (the child was stopped
  normally) writes one byte instead, and the watcher leaves without a signal.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import ctypes.util
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

PARENT_PID_ENV = "CHAT_PARENT_PID"
"""Set by the supervisor in its children's environment: the pid they must not outlive."""
PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 30.0
POLL_S = 0.5

T = TypeVar("T")


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()
"""Resolved once, in the parent: a ``preexec_fn`` must not load libraries after fork."""


def arm_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel for ``sig`` when our parent (thread) exits. False where that is not
    available (not Linux) or refused."""
    return _PRCTL is not None and _PRCTL(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def parent_gone(expected_parent: int, current_parent: int) -> bool:
    """Whether a child started by ``expected_parent`` has been orphaned (pure): re-parented to
    init or a subreaper, its parent pid is another one."""
    return current_parent != expected_parent


def _die_with(parent_pid: int) -> Callable[[], None]:
    def preexec() -> None:  # in the child, between fork and exec: no imports, no locks
        arm_parent_death_signal()
        if parent_gone(parent_pid, os.getppid()):
            os._exit(1)

    return preexec


class _Spawner:
    """One daemon thread that lives as long as the process and runs the forks asked of it."""

    _instance: _Spawner | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]] = queue.SimpleQueue()
        threading.Thread(target=self._loop, name="chat-events-spawner", daemon=True).start()

    @classmethod
    def get(cls) -> _Spawner:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _loop(self) -> None:
        while True:
            job, future = self._jobs.get()
            try:
                future.set_result(job())
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)

    def run(self, job: Callable[[], T]) -> T:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((job, future))
        return future.result()


def spawn(start: Callable[[], T]) -> T:
    """Run ``start`` (which forks) on a thread that outlives its children: the main thread, or
    the spawner thread when called from any other."""
    if threading.current_thread() is threading.main_thread():
        return start()
    return _Spawner.get().run(start)


def popen_tied(argv: Sequence[str], *, watcher: bool | None = None, **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen`` of a non-Python child, in a session of its own, that gets SIGTERM
    when this process dies: PDEATHSIG on Linux, a watcher elsewhere (``watcher`` forces one or
    none). Call :func:`release` once it has been stopped."""
    kwargs["start_new_session"] = True
    if _PRCTL is not None:
        kwargs["preexec_fn"] = _die_with(os.getpid())
    proc: subprocess.Popen[Any] = spawn(lambda: subprocess.Popen(list(argv), **kwargs))
    if watcher if watcher is not None else _PRCTL is None:
        _watchers[proc.pid] = subprocess.Popen(
            [sys.executable, "-m", "chat_events.lifeline", str(proc.pid)],
            stdin=subprocess.PIPE,
            start_new_session=True,  # a terminal's Ctrl-C is not for it
        )
    return proc


_watchers: dict[int, subprocess.Popen[bytes]] = {}
"""Child pid -> its watcher, whose stdin (the pipe's write end) lives as long as we do."""


def release(pid: int | None) -> None:
    """The child ``pid`` of :func:`popen_tied` was stopped: its watcher, if any, leaves quietly."""
    watcher = _watchers.pop(pid, None) if pid is not None else None
    if watcher is None or watcher.stdin is None:
        return
    try:
        watcher.stdin.write(b"x")
        watcher.stdin.close()
        watcher.wait(10)
    except (OSError, subprocess.TimeoutExpired):
        watcher.kill()


def _watch_pipe(pgid: int) -> int:
    """The watcher: wait for a byte (released) or EOF (the parent is gone: stop the group)."""
    if sys.stdin.buffer.read(1):
        return 0
    try:
        os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline:
            time.sleep(POLL_S)
            os.killpg(pgid, 0)  # still there?
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return 0


def follow_parent(expected: str | None = None) -> None:
    """In a Python child: stop when the parent named by :data:`PARENT_PID_ENV` (or ``expected``)
    is gone. Nothing when neither is set (a command started by hand)."""
    raw = expected if expected is not None else os.environ.get(PARENT_PID_ENV)
    if not raw:
        return
    try:
        parent = int(raw)
    except ValueError:
        return
    armed = arm_parent_death_signal()
    if parent_gone(parent, os.getppid()):  # it died before we armed: nobody will signal us
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=_watch, args=(parent, armed), name="chat-events-lifeline", daemon=True).start()


def _watch(parent: int, armed: bool) -> None:
    while not parent_gone(parent, os.getppid()):
        time.sleep(POLL_S)
    if not armed:
        os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(STOP_GRACE_S)
    os._exit(1)  # a graceful stop that hangs must not hold the ports forever


if __name__ == "__main__":
    sys.exit(_watch_pipe(int(sys.argv[1])))
