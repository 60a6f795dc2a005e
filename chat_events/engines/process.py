"""One JVM child process of an engine: started in its own session with its output in a log
file, stopped with SIGTERM and killed after a bound, and told to stop (SIGTERM) if the process
that started it dies (:func:`chat_events.lifeline.popen_tied`). Shared by the Kafka and
Cassandra servers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

from chat_events.engines.availability import EngineUnavailableError
from chat_events.lifeline import popen_tied, release

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_accepts(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class JvmProcess:
    """``java <argv>`` with stdout and stderr appended to ``log_path``."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, *, cwd: Path) -> None:
        self.name = name
        self._argv = list(argv)
        self.log_path = log_path
        self._cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._process = popen_tied(  # it dies with us, however we die
                self._argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self._cwd,
                start_new_session=True,
            )

    def wait_ready(self, is_ready: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Poll ``is_ready`` until true; a clear error (with the log's tail) if the process
        exits or the bound passes."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise EngineUnavailableError(
                    f"{self.name} exited with code {code} before {what}; log: {self.log_path}\n{tail(self.log_path)}"
                )
            if is_ready():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise EngineUnavailableError(
                    f"{self.name} was not {what} within {timeout_s:g}s; log: {self.log_path}\n{tail(self.log_path)}"
                )
            time.sleep(0.2)

    def wait_exit(self, timeout_s: float) -> int | None:
        """Wait for a short-lived command; kill it past the bound. Returns its exit code."""
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return self.stop(5)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, wait up to ``timeout_s``, then SIGKILL. Returns the exit code."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        release(process.pid)
        return process.returncode

    def kill(self) -> None:
        """SIGKILL now (fault tests)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        release(process.pid if process else None)


class EngineServer:
    """What a Kafka and a Cassandra node share: a work folder holding data, config and
    ``<name>.log``, one JVM process, stop (SIGTERM, then kill after ``stop_timeout_s``) and kill
    (the data folder stays: ``start()`` runs again on it). Subclasses implement ``start()``."""

    name = "engine"
    stop_timeout_s = 30.0

    def __init__(self, work_dir: Path, *, port: int, heap_mb: int, cache_dir: Path | None) -> None:
        from chat_events.engines.maven import default_cache_dir

        self.work_dir = work_dir
        self.port = port
        self.heap_mb = heap_mb
        self._cache_dir = cache_dir or default_cache_dir()
        self._process: JvmProcess | None = None

    @property
    def log_path(self) -> Path:
        return self.work_dir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> str:
        raise NotImplementedError

    def _run(self, argv: Sequence[str], is_ready: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Start the JVM and wait until ``is_ready`` (see :meth:`JvmProcess.wait_ready`)."""
        self._process = JvmProcess(self.name, argv, self.log_path, cwd=self.work_dir)
        self._process.start()
        self._process.wait_ready(is_ready, timeout_s, what)

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(self.stop_timeout_s)
            self._process = None

    def kill(self) -> None:
        """SIGKILL the node; its data folder stays."""
        if self._process is not None:
            self._process.kill()
            self._process = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
