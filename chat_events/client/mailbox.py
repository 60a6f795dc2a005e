"""An in-order queue between the reader task and the application, which can be ended with an error."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Mailbox(Generic[T]):
    """FIFO of items; ``get()`` waits for one, or raises the error given to ``fail()`` once drained.

    ``maxlen`` bounds the queue by dropping the oldest items (for best-effort events such as typing).
    """

    def __init__(self, maxlen: int | None = None) -> None:
        self._items: deque[T] = deque(maxlen=maxlen)
        self._wake = asyncio.Event()
        self._failure: BaseException | None = None

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        self._items.append(item)
        self._wake.set()

    def extend(self, items: Iterable[T]) -> None:
        self._items.extend(items)
        if self._items:
            self._wake.set()

    def fail(self, error: BaseException | None) -> None:
        """After the queued items, ``get()`` raises ``error`` (None: clear a previous failure)."""
        self._failure = error
        self._wake.set()

    async def get(self, timeout_s: float | None = None) -> T:
        """The next item; ``TimeoutError`` after ``timeout_s`` seconds; the failure once empty."""
        async with asyncio.timeout(timeout_s):
            while True:
                if self._items:
                    return self._items.popleft()
                if self._failure is not None:
                    raise self._failure
                self._wake.clear()
                await self._wake.wait()
