"""Running real ``chat-events edge`` processes (uvicorn on a real port) next to a real worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from chat_events.settings import Settings
from tests.integration.worker_harness import settings_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EdgeProcess:
    """``python -m chat_events.cli.main edge`` on its own port with the test's settings."""

    def __init__(self, settings: Settings, log_path: Path, *, name: str = "edge") -> None:
        self.settings = settings
        self.name = name
        self.port = free_port()
        self._log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, *, timeout: float = 60.0, ready: bool = True) -> None:
        """Start and wait until ``/readyz`` answers 200 (workers running), or with ``ready=False``
        only until the edge answers HTTP at all (``/healthz``)."""
        env = settings_env(self.settings)
        env["CHAT_EDGE_PORT"] = str(self.port)
        env["CHAT_EDGE_NAME"] = self.name
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chat_events.cli.main", "edge", "--log-level", "WARNING"],
            env=env,
            stdout=self._log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"edge exited {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.http}/{'readyz' if ready else 'healthz'}", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"edge not ready in {timeout}s:\n{self.log()}")

    def edge_id(self) -> str:
        return str(httpx.get(f"{self.http}/healthz", timeout=5).json()["edge_id"])

    def log(self) -> str:
        return self._log_path.read_text(errors="replace")[-4000:]

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            return None
