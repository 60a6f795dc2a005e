"""One instance per data directory: the lock that ``chat-events up`` and ``chat-events broker`` hold.

Both write into ``CHAT_DATA_DIR`` on their own: the broker address files (``embedded-broker.json``,
``kafka-broker.json``, removed again on exit), the engines' data, the embedded store. A second one
started in the same directory would take those files over (and delete them when it exits, under
the first one's ``publish`` and ``consume``), and its worker would see the first instance's edge
as silent. So the first one locks ``CHAT_DATA_DIR/instance.lock`` and a second one is refused at
once, before it starts or deletes anything, with a message naming the running instance.

The lock is ``fcntl.flock`` on an open file, held for the process's life: the kernel releases it
when the process ends, however it ends, so a ``kill -9`` leaves no stale lock. The file names the
holder (command, pid, start time, URL) and is never deleted (a deleted lock file would let two
processes lock two different files); what it says counts only while it is locked. ``worker`` and
``edge`` take no lock: they join an instance (or run against external engines).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from chat_events.errors import ConfigurationError

LOCK_FILE = "instance.lock"


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a data directory's lock, as written in the lock file."""

    command: str
    pid: int
    started_at: str
    """Local time, ``YYYY-MM-DD HH:MM:SS``."""
    url: str | None = None

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        """The holder in a lock file's text; None for an empty or unreadable file."""
        try:
            raw = json.loads(text)
            return cls(str(raw["command"]), int(raw["pid"]), str(raw["started_at"]), raw.get("url") or None)
        except (ValueError, KeyError, TypeError):
            return None


class InstanceRunning(ConfigurationError):
    """Another ``up`` or ``broker`` holds this data directory."""

    code = "instance_running"


def refusal(data_dir: Path, holder: Holder | None, command: str) -> str:
    """Why ``command`` may not start in ``data_dir`` while ``holder`` runs there (pure)."""
    if holder is None:
        running = "another chat-events instance is starting"
    else:
        where = f", {holder.url}" if holder.url else ""
        running = (
            f"chat-events {holder.command} is already running (pid {holder.pid}{where}, since {holder.started_at})"
        )
    return (
        f"{running} in {data_dir}; a second {command} there would take over its files. "
        "Use the running one (other commands in this directory find it), stop it first (Ctrl-C), "
        "or give this one its own CHAT_DATA_DIR"
    )


class InstanceLock:
    """The exclusive lock on ``data_dir`` for ``command``, from :meth:`acquire` to :meth:`release`
    (or the process's end). Also a context manager."""

    def __init__(self, data_dir: Path, command: str) -> None:
        self.data_dir = data_dir
        self.command = command
        self._fd: int | None = None
        self._holder: Holder | None = None

    @property
    def path(self) -> Path:
        return self.data_dir / LOCK_FILE

    def acquire(self, *, url: str | None = None) -> InstanceLock:
        """Lock the directory or raise :class:`InstanceRunning` naming the holder, at once."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by children
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InstanceRunning(refusal(self.data_dir, read_holder(self.data_dir), self.command)) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._holder = Holder(self.command, os.getpid(), time.strftime("%Y-%m-%d %H:%M:%S"), url)
        self._write()
        return self

    def update(self, *, url: str) -> None:
        """Record where the instance answers, once known."""
        if self._holder is not None:
            self._holder = Holder(self._holder.command, self._holder.pid, self._holder.started_at, url)
            self._write()

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # the holder is gone: nobody is named any more
        os.close(fd)  # closing the only descriptor releases the lock

    def _write(self) -> None:
        assert self._fd is not None and self._holder is not None
        data = json.dumps(asdict(self._holder)).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def __enter__(self) -> InstanceLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def read_holder(data_dir: Path) -> Holder | None:
    """What the lock file of ``data_dir`` says (meaningful only while it is locked)."""
    try:
        return Holder.parse((data_dir / LOCK_FILE).read_text(encoding="utf-8"))
    except OSError:
        return None
