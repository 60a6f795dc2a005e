"""The broker address files in the data directory: a broker removes only its own."""

from __future__ import annotations

from pathlib import Path

from chat_events.kafka.embedded import REAL_STATE_FILE, BrokerState, remove_state, write_state


def test_a_state_file_is_removed_only_by_the_broker_it_names(tmp_path: Path) -> None:
    write_state(tmp_path, BrokerState("127.0.0.1:9092", 4242), REAL_STATE_FILE)
    remove_state(tmp_path, REAL_STATE_FILE, pid=4343)  # another broker's file: left alone
    assert (tmp_path / REAL_STATE_FILE).exists()
    remove_state(tmp_path, REAL_STATE_FILE, pid=4242)
    assert not (tmp_path / REAL_STATE_FILE).exists()
    remove_state(tmp_path, REAL_STATE_FILE, pid=4242)  # already gone: nothing to do


def test_without_a_pid_the_file_is_removed() -> None:
    remove_state(Path("/nonexistent-dir"))  # never raises
