"""Which log lines are normal (INFO) and which need attention (WARNING), and what the
long-running commands configure: chat-events at INFO by default, libraries at WARNING."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from chat_events.cli.logs import configure_logging, library_level
from chat_events.kafka.log_noise import COORDINATOR_LOGGER, DemoteStartupNoise, coordinator_startup_demoted
from chat_events.streams.presence import EdgeMonitor, edge_end_log


def test_an_edge_that_stopped_with_no_sessions_left_is_info_the_rest_warning() -> None:
    assert edge_end_log(stopped=True, sessions=0) == (logging.INFO, "stopped")
    assert edge_end_log(stopped=True, sessions=2) == (logging.WARNING, "stopped")
    assert edge_end_log(stopped=False, sessions=0) == (logging.WARNING, "is silent")
    assert edge_end_log(stopped=False, sessions=3) == (logging.WARNING, "is silent")


def test_the_monitor_remembers_whether_a_dead_edge_had_announced_its_stop() -> None:
    monitor = EdgeMonitor(default_timeout_ms=1000)
    monitor.heartbeat("quiet", now_ms=0, interval_ms=100)
    monitor.heartbeat("clean", now_ms=0, interval_ms=100, stopping=True)
    assert monitor.due(now_ms=10) == ["clean"]
    assert monitor.stopped_cleanly("clean") and not monitor.stopped_cleanly("quiet")
    assert monitor.due(now_ms=5000) == ["quiet"]
    assert not monitor.stopped_cleanly("quiet")
    monitor.rearm(["clean"])  # its expiry failed: due again, still a clean stop
    assert monitor.due(now_ms=5001) == ["clean"] and monitor.stopped_cleanly("clean")
    monitor.heartbeat("clean", now_ms=6000, interval_ms=100)  # back: not expired any more
    assert not monitor.stopped_cleanly("clean") and not monitor.is_expired("clean")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root, ours = logging.getLogger(), logging.getLogger("chat_events")
    saved = (root.level, list(root.handlers), ours.level)
    yield
    root.handlers[:] = saved[1]
    root.setLevel(saved[0])
    ours.setLevel(saved[2])


@pytest.mark.usefixtures("restore_logging")
def test_chat_events_logs_at_the_level_asked_libraries_at_warning() -> None:
    assert library_level("debug") == library_level("INFO") == logging.WARNING
    assert library_level("ERROR") == logging.ERROR
    for handler in logging.getLogger().handlers[:]:  # basicConfig does nothing while handlers exist
        logging.getLogger().removeHandler(handler)
    configure_logging("INFO")
    assert logging.getLogger("chat_events.streams.worker").isEnabledFor(logging.INFO)
    assert not logging.getLogger("aiokafka.consumer").isEnabledFor(logging.INFO)
    assert logging.getLogger("aiokafka.consumer").isEnabledFor(logging.WARNING)


def _record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord(COORDINATOR_LOGGER, level, __file__, 1, message, None, None)


@pytest.mark.usefixtures("restore_logging")
def test_a_fresh_kafkas_coordinator_noise_is_info_while_a_worker_starts() -> None:
    logging.getLogger("chat_events").setLevel(logging.INFO)
    noise = DemoteStartupNoise()
    error = _record(logging.ERROR, "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError")
    dead = _record(logging.WARNING, "Marking the coordinator dead (node 1)for group chat-events-worker.")
    other = _record(logging.ERROR, "Group Coordinator Request failed: [Error 7] RequestTimedOutError")
    assert noise.filter(error) and error.levelno == logging.INFO and error.levelname == "INFO"
    assert noise.filter(dead) and dead.levelno == logging.INFO
    assert noise.filter(other) and other.levelno == logging.ERROR  # anything else keeps its level
    logging.getLogger("chat_events").setLevel(logging.WARNING)  # INFO not shown: neither is the noise
    assert not noise.filter(_record(logging.WARNING, "Marking the coordinator dead (node 1)"))
    with coordinator_startup_demoted():
        assert any(isinstance(f, DemoteStartupNoise) for f in logging.getLogger(COORDINATOR_LOGGER).filters)
    assert not any(isinstance(f, DemoteStartupNoise) for f in logging.getLogger(COORDINATOR_LOGGER).filters)
