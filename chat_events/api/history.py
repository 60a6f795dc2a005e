"""Which page of a conversation's history a request asks for (``GET
/v1/conversations/{id}/messages``), decided purely: after a seq, before a seq, the newest page,
or a closed seq range ``from_seq..to_seq`` (SyncFetchSessionMsgs, issue 15 item 7).

A range is inclusive at both ends and ascending; a page that does not reach ``to_seq`` says
``has_more`` and names where to go on (``next_from_seq``: its last seq + 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NEWEST = 2**63 - 1
"""``before_seq`` of the newest page."""


@dataclass(frozen=True, slots=True)
class Problem:
    """A refused combination of parameters: answered 422, code 5, ``<field>: <reason>``."""

    field: str
    reason: str

    @property
    def message(self) -> str:
        return f"{self.field}: {self.reason}"


@dataclass(frozen=True, slots=True)
class After:
    seq: int


@dataclass(frozen=True, slots=True)
class Before:
    seq: int


@dataclass(frozen=True, slots=True)
class Range:
    from_seq: int
    to_seq: int


Selection = After | Before | Range


def select_page(
    *, after_seq: int | None, before_seq: int | None, from_seq: int | None, to_seq: int | None
) -> Selection | Problem:
    """The page asked for, or what is wrong with the parameters (their bounds are checked by
    the route: seqs >= 0, ``before_seq`` >= 1)."""
    ranged = from_seq is not None or to_seq is not None
    if ranged and (after_seq is not None or before_seq is not None):
        field = "after_seq" if after_seq is not None else "before_seq"
        return Problem(field, "cannot be combined with from_seq/to_seq")
    if after_seq is not None and before_seq is not None:
        return Problem("before_seq", "give after_seq or before_seq, not both")
    if ranged:
        if from_seq is None:
            return Problem("from_seq", "is required with to_seq")
        if to_seq is None:
            return Problem("to_seq", "is required with from_seq")
        if from_seq > to_seq:
            return Problem("from_seq", f"must be at most to_seq ({to_seq}), got {from_seq}")
        return Range(from_seq, to_seq)
    if after_seq is not None:
        return After(after_seq)
    return Before(NEWEST if before_seq is None else before_seq)


def range_body(views: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """The answer to a range request: ``next_from_seq`` is where the range goes on (null when
    the page reached its end)."""
    next_from = int(views[-1]["seq"]) + 1 if has_more and views else None
    return {"messages": views, "has_more": has_more, "next_from_seq": next_from}
