"""Which history page a request asks for (``chat_events/api/history.py``), issue 15 item 7."""

from __future__ import annotations

import pytest

from chat_events.api.history import NEWEST, After, Before, Problem, Range, range_body, select_page


def _select(**given: int) -> object:
    params: dict[str, int | None] = {"after_seq": None, "before_seq": None, "from_seq": None, "to_seq": None}
    params.update(given)
    return select_page(**params)


def test_the_pages_asked_for() -> None:
    assert _select() == Before(NEWEST)
    assert _select(after_seq=4) == After(4)
    assert _select(before_seq=9) == Before(9)
    assert _select(from_seq=3, to_seq=8) == Range(3, 8)
    assert _select(from_seq=5, to_seq=5) == Range(5, 5)


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"from_seq": 9, "to_seq": 8}, "from_seq"),
        ({"from_seq": 3}, "to_seq"),
        ({"to_seq": 3}, "from_seq"),
        ({"from_seq": 1, "to_seq": 3, "after_seq": 0}, "after_seq"),
        ({"to_seq": 3, "before_seq": 5}, "before_seq"),
        ({"after_seq": 1, "before_seq": 5}, "before_seq"),
    ],
)
def test_refused_combinations_name_their_field(given: dict[str, int], field: str) -> None:
    problem = _select(**given)
    assert isinstance(problem, Problem) and problem.field == field
    assert problem.message.startswith(f"{field}: ")


def test_from_after_to_says_both() -> None:
    problem = _select(from_seq=9, to_seq=8)
    assert isinstance(problem, Problem) and problem.message == "from_seq: must be at most to_seq (8), got 9"


def test_a_range_body_says_where_it_goes_on() -> None:
    views = [{"seq": 4}, {"seq": 5}]
    assert range_body(views, True) == {"messages": views, "has_more": True, "next_from_seq": 6}
    assert range_body(views, False)["next_from_seq"] is None
    assert range_body([], False) == {"messages": [], "has_more": False, "next_from_seq": None}
