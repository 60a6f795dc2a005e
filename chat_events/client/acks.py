"""Coalesced device acks: at most one ``ack`` per interval, or sooner once ``every`` deliveries are unacked.

Acks are advisory (the client's own ``last_seq`` is what ``sync`` resumes from), so a lost ack is
simply superseded by the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger("chat_events.client")

AckSender = Callable[[int], Awaitable[bool]]
"""Sends ``ack(seq)``; returns False when there was no open connection to send it on."""


class AckCoalescer:
    def __init__(self, send: AckSender, *, interval_s: float = 0.2, every: int = 50, acked_seq: int = 0) -> None:
        self._send = send
        self._interval_s = interval_s
        self._every = max(1, every)
        self._seq = acked_seq
        self._acked = acked_seq
        self._unacked = 0
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def acked_seq(self) -> int:
        """The highest seq acked so far."""
        return self._acked

    def note(self, seq: int) -> None:
        """The application received everything up to ``seq``."""
        if seq <= self._seq:
            return
        self._seq = seq
        self._unacked += 1
        self._wake.set()
        if self._unacked >= self._every:
            self._full.set()

    def resume_at(self, seq: int) -> None:
        """Everything up to ``seq`` is acked already (the device's stored progress)."""
        self._seq = max(self._seq, seq)
        self._acked = max(self._acked, seq)

    def rewind(self, seq: int) -> None:
        """The server's numbering restarted below what was acked (it lost data): count from ``seq``."""
        if seq < self._seq:
            self._seq = seq
            self._acked = min(self._acked, seq)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="chat-client-acks")

    async def flush(self) -> None:
        """Ack now whatever is unacked."""
        seq = self._seq
        if seq <= self._acked:
            return
        self._unacked = 0
        try:
            if await self._send(seq):
                self._acked = max(self._acked, seq)
        except Exception as exc:  # an ack is advisory: the next one supersedes it
            logger.debug("ack %d not sent: %s", seq, exc)

    async def stop(self, *, flush: bool = True) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task})
            self._task = None
        if flush:
            await self.flush()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if not self._full.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._interval_s):
                        await self._full.wait()
            self._wake.clear()
            self._full.clear()
            await self.flush()
