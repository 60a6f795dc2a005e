"""The terminal chat reads what it shows: the open conversation is marked read up to the
highest seq printed (as a messenger in the foreground does), at most once per interval, so the
user's other devices clear their badge and the sender gets a read receipt. The benchmark's
clients read the same way (``benchmarks/edge_load.py``, ``--only reads``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chat_events.client import ChatClient

log = logging.getLogger(__name__)
READ_INTERVAL_S = 0.3


class ReadMarker:
    def __init__(self, chat: ChatClient, conversation_id: str, interval_s: float = READ_INTERVAL_S) -> None:
        self._chat = chat
        self._conversation = conversation_id
        self._interval_s = interval_s
        self._shown = 0
        self._read = 0
        self._task: asyncio.Task[None] | None = None

    def shown(self, message: dict[str, Any]) -> None:
        """``message`` was printed: read up to it soon (other conversations' messages are not)."""
        seq = message.get("seq")
        if message.get("conversation_id") != self._conversation or not isinstance(seq, int) or seq <= self._shown:
            return
        self._shown = seq
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        """Read up to what was shown, again while more was shown during the request."""
        while self._shown > self._read:
            await asyncio.sleep(self._interval_s)
            seq = self._shown
            try:
                await self._chat.read(self._conversation, seq)
            except Exception as exc:  # a lost connection, a refusal: the next message reads again
                log.debug("marking %s read up to %d failed: %s", self._conversation, seq, exc)
                return
            self._read = seq

    async def close(self, timeout_s: float = 2.0) -> None:
        """Read what was shown last (bounded by ``timeout_s``), then stop."""
        if self._task is not None and not self._task.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
