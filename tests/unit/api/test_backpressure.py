"""The back-pressure decisions: lag arithmetic and the gate's hysteresis (pure)."""

from __future__ import annotations

from aiokafka import TopicPartition

from chat_events.api.backpressure import AdmissionGate, next_state
from chat_events.kafka.lag import lag_by_topic

A0, A1, B0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)


def test_lag_is_end_minus_committed_summed_per_topic() -> None:
    end = {A0: 100, A1: 50, B0: 7}
    committed = {A0: 90, A1: 50}
    start = {A0: 0, A1: 0, B0: 3}
    assert lag_by_topic(end, committed, start) == {"a": 10, "b": 4}  # b never committed: from its start


def test_lag_never_goes_negative() -> None:
    assert lag_by_topic({A0: 5}, {A0: 9}, {A0: 0}) == {"a": 0}


def test_the_gate_closes_above_the_limit_and_reopens_at_half() -> None:
    assert next_state(True, 1000, 1000) is True
    assert next_state(True, 1001, 1000) is False
    assert next_state(False, 900, 1000) is False  # still above half: stays closed
    assert next_state(False, 500, 1000) is True


def test_an_unknown_lag_keeps_the_state_and_zero_disables_the_gate() -> None:
    assert next_state(False, None, 1000) is False
    assert next_state(True, None, 1000) is True
    assert next_state(False, 10**9, 0) is True


def test_gate_observes_readings() -> None:
    gate = AdmissionGate(max_lag=100)
    gate.observe(150)
    assert not gate.open and gate.lag == 150
    gate.observe(None)
    assert not gate.open and gate.lag is None
    gate.observe(40)
    assert gate.open


def test_readings_that_keep_failing_open_a_closed_gate() -> None:
    gate = AdmissionGate(max_lag=100, max_unknown=3)
    gate.observe(500)
    gate.observe(None)
    gate.observe(None)
    assert not gate.open  # a broker hiccup keeps the gate as it was
    gate.observe(None)
    assert gate.open  # a lag that cannot be read must not refuse sends for good
    gate.observe(500)
    assert not gate.open and gate.unknown == 0
