"""docs/protocol.md keeps every code, close code and frame type of chat_events/api/protocol.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat_events.api.protocol import INPUT_TYPES, OUTPUT_ONLY_TYPES, SYNC_PAGE_MAX, Close, Code

DOC = (Path(__file__).parents[3] / "docs" / "protocol.md").read_text()


@pytest.mark.parametrize("code", list(Code), ids=lambda c: c.name)
def test_every_result_code_is_in_the_table(code: Code) -> None:
    assert f"| {code.value} | `{code.name}` |" in DOC


@pytest.mark.parametrize("close", list(Close), ids=lambda c: c.name)
def test_every_close_code_is_in_the_table(close: Close) -> None:
    assert f"| {close.value} | `{close.name}` |" in DOC


@pytest.mark.parametrize("frame_type", sorted(INPUT_TYPES | OUTPUT_ONLY_TYPES))
def test_every_frame_type_has_a_section(frame_type: str) -> None:
    assert f"### `{frame_type}`" in DOC


def test_limits_and_source_of_truth() -> None:
    assert "chat_events/api/protocol.py" in DOC.split("\n\n")[1]
    assert f"1-{SYNC_PAGE_MAX}" in DOC
