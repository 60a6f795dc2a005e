"""Ordering of per-user deliveries: dedupe and gap detection. Pure (no IO, no event loop).

The server numbers every delivery to a user with a dense ``user_seq`` (1, 2, 3, ...). A socket
can see the same seq twice (a redelivery after a crash, or a live push that a ``sync`` page
also holds) and can miss some (stored before the session was registered, or lost with an edge).
The client keeps ``last_seq``, the highest seq released in order, and decides per arrival:

* ``user_seq <= last_seq``, or already buffered: a duplicate, dropped;
* ``user_seq == last_seq + 1``: released, with any buffered seqs that now follow on;
* ``user_seq > last_seq + 1``: a gap; buffered, and the client must ``sync`` from ``last_seq``.
"""

from __future__ import annotations

import enum
from collections.abc import Container
from typing import Any

from chat_events.client.models import Delivery


class Verdict(enum.Enum):
    DELIVER = "deliver"
    """Next in order: release it (and whatever buffered seqs follow on)."""
    DUPLICATE = "duplicate"
    """Already released or already buffered: drop it."""
    GAP = "gap"
    """Ahead of a missing seq: buffer it and sync from ``last_seq``."""


def classify(last_seq: int, user_seq: int, buffered: Container[int] = ()) -> Verdict:
    """What to do with ``user_seq`` when everything up to ``last_seq`` has been released."""
    if user_seq <= last_seq or user_seq in buffered:
        return Verdict.DUPLICATE
    if user_seq == last_seq + 1:
        return Verdict.DELIVER
    return Verdict.GAP


class Inbox:
    """Releases deliveries strictly in ``user_seq`` order, each seq once."""

    def __init__(self, last_seq: int = 0) -> None:
        if last_seq < 0:
            raise ValueError("last_seq must be >= 0")
        self._last_seq = last_seq
        self._buffered: dict[int, dict[str, Any]] = {}

    @property
    def last_seq(self) -> int:
        """The highest seq released in order."""
        return self._last_seq

    @property
    def needs_sync(self) -> bool:
        """True while a buffered seq waits behind a missing one."""
        return bool(self._buffered)

    @property
    def gap(self) -> tuple[int, int] | None:
        """The first missing range ``(from_seq, to_seq)``, or None."""
        if not self._buffered:
            return None
        return self._last_seq + 1, min(self._buffered) - 1

    @property
    def buffered(self) -> int:
        return len(self._buffered)

    def offer(self, user_seq: int, message: dict[str, Any]) -> tuple[Verdict, list[Delivery]]:
        """Take one arrival (a push or an item of a sync page); return the verdict and what it releases."""
        verdict = classify(self._last_seq, user_seq, self._buffered)
        if verdict is Verdict.DUPLICATE:
            return verdict, []
        self._buffered[user_seq] = message
        return verdict, self._drain()

    def skip_to(self, resume_seq: int) -> list[Delivery]:
        """Continue after ``resume_seq``: the server said the seqs before it are not recoverable.

        Buffered seqs at or below ``resume_seq`` are still released (in order) since they did
        arrive. ``resume_seq`` below ``last_seq`` moves ``last_seq`` back: the server is behind
        this client (it lost data) and numbers its next deliveries from ``resume_seq + 1``.
        """
        released = [Delivery(seq, self._buffered.pop(seq)) for seq in sorted(self._buffered) if seq <= resume_seq]
        self._last_seq = resume_seq
        return released + self._drain()

    def resume_at(self, seq: int) -> list[Delivery]:
        """Continue after ``seq`` (before anything was released: the device's stored progress
        tells where it stopped). Buffered seqs at or below it are dropped: they were delivered
        in an earlier run."""
        for buffered in [s for s in self._buffered if s <= seq]:
            del self._buffered[buffered]
        self._last_seq = max(self._last_seq, seq)
        return self._drain()

    def _drain(self) -> list[Delivery]:
        released: list[Delivery] = []
        while (message := self._buffered.pop(self._last_seq + 1, None)) is not None:
            self._last_seq += 1
            released.append(Delivery(self._last_seq, message))
        return released
