"""``/readyz`` tells the truth: an edge is ready only once the workers would register its sessions.

An edge started before any worker answers 503; once a worker has joined its group it answers 200,
and a sign-in right after that is registered by the workers before it is answered (protocol.md:
"once this answer arrives the session is registered").
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from chat_events.client import ChatClient, HttpApi
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.store.factory import open_store
from chat_events.supervisor import EXIT_CONFIG
from tests.conftest import make_settings
from tests.integration.edge_harness import EdgeProcess
from tests.integration.worker_harness import WorkerProcess, settings_env

pytestmark = pytest.mark.integration


def readyz(edge: EdgeProcess) -> httpx.Response:
    return httpx.get(f"{edge.http}/readyz", timeout=5)


def wait_ready(edge: EdgeProcess, timeout: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = readyz(edge)
        if answer.status_code == 200:
            return answer
        time.sleep(0.05)
    raise AssertionError(f"/readyz not 200 in {timeout}s: {readyz(edge).json()}\n{edge.log()}")


async def test_readyz_waits_for_the_workers_and_a_sign_in_right_after_is_registered(
    kafka_target: KafkaTarget, tmp_path: Path
) -> None:
    settings = make_settings(kafka_target, tmp_path, worker_app_id=f"w-{uuid.uuid4().hex[:8]}")
    await ensure_topics(settings, kafka_target)
    edge = EdgeProcess(settings, tmp_path / "edge.log")
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        edge.start(ready=False)
        answer = readyz(edge)
        assert answer.status_code == 503, answer.text  # no worker: a sign-in would not be registered
        assert answer.json() == {"ready": False, "edge_id": edge.edge_id(), "workers": False}

        worker.start()
        assert wait_ready(edge).json()["workers"] is True
        async with HttpApi(edge.http) as api:
            token = (await api.dev_token("alice")).token
        async with ChatClient(edge.http, token=token, device_id="d1") as alice:
            # The sign-in answer came after the workers stored the session, not after 5 s in vain.
            async with open_store(settings) as store:
                sessions = (await store.sessions_of(["alice"])).get("alice", ())
            assert alice.session_id in {s.session_id for s in sessions}, edge.log()
        assert "not registered by the workers in time" not in edge.log()
    finally:
        edge.stop()
        worker.stop()


def test_an_edge_whose_port_is_in_use_says_so_at_once_and_starts_nothing(
    kafka_target: KafkaTarget, tmp_path: Path
) -> None:
    """Not "ready" and then a crash to retry: a clear error and the do-not-restart exit status,
    before the edge announces itself to the workers."""
    settings = make_settings(kafka_target, tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = settings_env(settings)
        env["CHAT_EDGE_PORT"] = str(port)
        result = subprocess.run(
            [sys.executable, "-m", "chat_events.cli.main", "edge"], env=env, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == EXIT_CONFIG, result.stdout + result.stderr
    assert result.stderr.startswith(f"error: port_in_use: port {port} on 127.0.0.1 is in use"), result.stderr
    assert "ready (delivery topic" not in result.stdout + result.stderr and "Traceback" not in result.stderr
