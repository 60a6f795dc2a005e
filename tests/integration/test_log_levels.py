"""Normal operation logs INFO, what needs attention WARNING (issue 13): ``chat-events up``
started and stopped cleanly prints chat-events' INFO start lines and not one WARNING; the
sessions stage, over the real embedded store, logs an edge that stopped cleanly at INFO and an
edge gone silent with sessions at WARNING."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import pytest

from chat_events.codec import build_codec
from chat_events.events.factory import new_envelope
from chat_events.events.types import EdgeHeartbeat, Envelope, UserConnected
from chat_events.settings import Settings
from chat_events.store.factory import open_store
from chat_events.streams.app import build_stages
from chat_events.streams.records import Incoming, SourceRecord
from tests.integration.edge_harness import free_port
from tests.integration.test_up_and_chat import launch_up, stop_up, wait_for
from tests.real_engines import skip_or_fail, unavailable_reason

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("stack", ["embedded", "kafka"])
def test_a_clean_start_and_stop_of_up_logs_info_and_no_warning(stack: str, tmp_path: Path) -> None:
    """On ``kafka`` a fresh node (own data directory): the worker's first join finds the group
    coordinator not yet available, which aiokafka reports as an ERROR and a WARNING."""
    if stack != "embedded" and (reason := unavailable_reason()) is not None:
        skip_or_fail(reason)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env.update(CHAT_DATA_DIR=str(tmp_path / "data"), CHAT_EDGE_PORT=str(free_port()))
    log = tmp_path / "up.log"
    up = launch_up(stack, env, log)
    try:
        wait_for(log, "chat-events is up", up, 240)
        wait_for(log, "INFO chat_events.streams.worker: worker chat-events-worker consuming", up, 60)
        os.killpg(up.pid, signal.SIGINT)
        assert up.wait(60) == 0, log.read_text()[-3000:]
    finally:
        stop_up(up)
    text = log.read_text()
    assert "INFO chat_events.api.edge: edge " in text and " ready (delivery topic " in text
    noisy = [line for line in text.splitlines() if any(word in line for word in ("WARNING", "ERROR", "Traceback"))]
    assert noisy == [], text[-3000:]


def _incoming(envelopes: list[Envelope], settings: Settings) -> list[Incoming]:
    codec = build_codec(settings)
    return [Incoming(SourceRecord("in", 0, offset, b"k", codec.encode(e)), e) for offset, e in enumerate(envelopes, 1)]


async def test_a_silent_edge_with_sessions_warns_a_cleanly_stopped_one_does_not(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path, edge_heartbeat_timeout_ms=100, topic_partitions=2)
    crashed, stopped = "edge-a.1234abcd", "edge-b.5678abcd"
    async with open_store(settings) as store:
        sessions = build_stages(settings, store).sessions
        beats = [
            new_envelope(EdgeHeartbeat(edge_id=edge, interval_ms=30, started_at_ms=1, sessions=0))
            for edge in (crashed, stopped)
        ]
        connect = new_envelope(UserConnected(edge_id=crashed, device_id="d1"), user_id="alice", session_id="s1")
        bye = new_envelope(EdgeHeartbeat(edge_id=stopped, interval_ms=30, started_at_ms=1, sessions=0, stopping=True))
        result = await sessions.handle(_incoming([*beats, connect, bye], settings))
        assert not result.rejects
        caplog.set_level(logging.INFO, logger="chat_events")
        dead: list[str] = []
        for _ in range(200):  # the crashed edge goes silent after the 100 ms timeout
            dead += (await sessions.expire_silent_edges(lambda user: True))[1]
            if len(dead) == 2:
                break
            await asyncio.sleep(0.05)
    assert sorted(dead) == [crashed, stopped]
    lines = {(r.levelno, r.getMessage()) for r in caplog.records if r.name == "chat_events.streams.user_events"}
    assert (logging.INFO, f"edge {stopped} stopped: ending 0 sessions") in lines
    assert (logging.WARNING, f"edge {crashed} is silent: ending 1 sessions") in lines
