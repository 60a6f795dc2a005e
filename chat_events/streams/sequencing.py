"""Sequence counters: per-conversation and per-user seqs, dense and never reused.

The counter of a key lives in the memory of the one worker that owns the key's partition and
starts from the store's maximum the first time the key is seen (so seqs continue correctly even
when the broker lost its data). Allocation is two-phase: :meth:`SeqCounters.allocate` hands out
seqs, and the caller :meth:`commit`s them only after the store write succeeded; after any
failure the caller calls :meth:`forget`, and the next attempt reloads from the store — so a
failed write never leaves a gap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class SeqCounters:
    """Last assigned seq per key (conversation id or user id)."""

    def __init__(self) -> None:
        self._committed: dict[str, int] = {}
        self._pending: dict[str, int] = {}

    def unknown(self, keys: Iterable[str]) -> set[str]:
        """Keys whose current maximum must be loaded from the store before allocating."""
        return {key for key in keys if key not in self._committed}

    def seed(self, maxima: Mapping[str, int]) -> None:
        """Start keys from the store's maxima (never moving a known counter backwards)."""
        for key, value in maxima.items():
            if value > self._committed.get(key, -1):
                self._committed[key] = value

    def committed_of(self, keys: Iterable[str]) -> dict[str, int]:
        """The committed (stored) maximum of each known key among ``keys``: what the store holds,
        since this worker is the keys' only writer and commits only after a successful write."""
        return {key: self._committed[key] for key in keys if key in self._committed}

    def allocate(self, key: str) -> int:
        """The next seq for ``key`` (1 for a key with no messages). The key must be known."""
        current = self._pending.get(key)
        if current is None:
            current = self._committed[key]
        self._pending[key] = current + 1
        return current + 1

    def peek(self, key: str) -> int:
        """The seq :meth:`allocate` would hand out next for ``key`` (allocating nothing)."""
        current = self._pending.get(key)
        return (self._committed[key] if current is None else current) + 1

    def commit(self) -> None:
        """Make every allocation since the last commit permanent (the store has them)."""
        self._committed.update(self._pending)
        self._pending.clear()

    def forget(self, keys: Iterable[str] | None = None) -> None:
        """Drop pending allocations and the given keys (all keys if None): reload them next time."""
        self._pending.clear()
        if keys is None:
            self._committed.clear()
        else:
            for key in keys:
                self._committed.pop(key, None)
