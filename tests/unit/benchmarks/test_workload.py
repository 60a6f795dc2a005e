"""The issue-12 workload's bookkeeping (benchmarks.workload): delivery tally and table cells."""

from __future__ import annotations

from typing import Any

from benchmarks.edge_load import Recorder
from benchmarks.workload import Tally, issue_figures, latency_cell, lost_cell, user_names


def recorder_with(deliveries: list[tuple[int, int]]) -> Recorder:
    recorder = Recorder()
    for i, (key, user) in enumerate(deliveries):
        recorder.add(1_000 + i, key, 0, user)
    return recorder


def test_users_are_u0_to_u49() -> None:
    names = user_names()
    assert names[0] == "u0" and names[-1] == "u49" and len(names) == 50


def test_tally_counts_distinct_recipients_duplicates_and_failed_sends() -> None:
    recorder = recorder_with([(1, 0), (1, 1), (1, 1), (2, 0), (3, 0), (9, 0)])
    tally = Tally(recorder, 0, answered={1, 2}, first_key=1, last_key=5)
    assert tally.scan() == 3  # (1, 0), (1, 1), (2, 0)
    assert tally.duplicates == 1  # the second (1, 1)
    assert tally.unanswered == 1  # key 3: its send failed, it arrived; key 9 is another phase's


def test_tally_scans_incrementally_from_its_start() -> None:
    recorder = recorder_with([(1, 0)])
    tally = Tally(recorder, 1, answered={1, 2}, first_key=1, last_key=2)
    assert tally.scan() == 0  # before the phase
    recorder.add(2_000, 2, 0, 3)
    assert tally.scan() == 1


def step(rate: float, delivered_per_s: float, recipients: int = 1, lost: int = 0) -> dict[str, Any]:
    return {
        "rate": rate,
        "delivered_per_s": delivered_per_s,
        "recipients_per_message": recipients,
        "latency": {"n": 10, "p50_ms": 5778.0, "p99_ms": 9000.0},
        "lost": lost,
        "expected": 1000,
        "events": {"send_errors": {}},
    }


def test_latency_cell_sustained_and_not() -> None:
    assert latency_cell(step(200, 199), 200) == "5,778 / 9,000"
    assert latency_cell(step(200, 166), 200) == "not sustained (166/s, p50 5,778)"
    assert latency_cell(step(4, 196, recipients=49), 4) == "5,778 / 9,000"


def test_issue_rows_and_lost() -> None:
    saturation = {"phase": {**step(0, 1154.4), "lost": 0}}
    run = {"w1_saturation": saturation, "w1_latency": {"steps": [step(200, 200, lost=2)]}}
    figures = issue_figures(run)
    assert list(figures) == ["W1 saturation, msg/s", "W1 at 200 msg/s, p50 / p99 ms", "lost (expected - delivered)"]
    assert figures["W1 saturation, msg/s"] == "1,154"
    assert lost_cell(run) == "2 of 2,000 (W1 at 200 msg/s 2)"
