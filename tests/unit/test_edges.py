"""Edge ids: valid Kafka topic components, readable, unique per start."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat_events.edges import EDGE_ID_PATTERN, is_edge_id, new_edge_id, sanitize_edge_name, validate_edge_id

KAFKA_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


def test_new_edge_id_is_name_and_eight_hex_digits() -> None:
    edge_id = new_edge_id("edge-1")
    assert re.fullmatch(r"edge-1-[0-9a-f]{8}", edge_id)
    assert validate_edge_id(edge_id) == edge_id
    assert new_edge_id("edge-1") != new_edge_id("edge-1")


def test_new_edge_id_defaults_to_the_host_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "Web-07.EU.example.com")
    assert re.fullmatch(r"web-07\.eu\.example\.com-[0-9a-f]{8}", new_edge_id())


@pytest.mark.parametrize(
    ("name", "sanitized"),
    [
        ("Edge 1", "edge-1"),
        ("  ..__--ünïcode host!!", "n-code-host"),
        ("a/b\\c:d", "a-b-c-d"),
        ("", "edge"),
        ("---", "edge"),
        ("x" * 100, "x" * 55),
        ("a" * 54 + "-b", "a" * 54),
    ],
)
def test_sanitize_edge_name(name: str, sanitized: str) -> None:
    assert sanitize_edge_name(name) == sanitized


@given(st.text(max_size=120))
def test_any_name_gives_a_valid_edge_id(name: str) -> None:
    edge_id = new_edge_id(name)
    assert is_edge_id(edge_id)
    assert len(edge_id) <= 64
    assert edge_id == edge_id.lower()
    assert KAFKA_TOPIC.fullmatch(f"chat.edge.{edge_id}")


@pytest.mark.parametrize("bad", ["", "Edge-1", "-edge", ".edge", "edge/1", "edge 1", "e" * 65, "édge", 7, None])
def test_invalid_edge_ids_are_rejected(bad: object) -> None:
    assert not is_edge_id(bad)
    with pytest.raises(ValueError, match="edge id"):
        validate_edge_id(bad)


def test_pattern_is_a_subset_of_kafka_topic_names() -> None:
    assert EDGE_ID_PATTERN.pattern == r"[a-z0-9][a-z0-9._-]{0,63}"
