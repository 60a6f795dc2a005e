"""One signed-in socket: who it is, and a bounded outbound queue drained by its own writer.

Deliveries never wait on a slow client: :meth:`Connection.push` only enqueues. A socket whose
queue overflows is closed with 1013 (try again later); the client reconnects and syncs, so
nothing is lost — the inbox in the store is the source of truth, pushes are a fast path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from starlette.websockets import WebSocket, WebSocketState

from chat_events.api.protocol import Close

log = logging.getLogger(__name__)
_CLOSE = object()


@dataclass(eq=False, slots=True)
class Connection:
    user_id: str
    device_id: str
    session_id: str
    socket: WebSocket
    queue_max: int
    pushed_seq: int = 0
    """Highest per-user seq pushed on this socket: a replayed delivery at or below it is dropped."""
    acked_seq: int = 0
    room_id: str | None = None
    room_seq: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    _queue: asyncio.Queue[object] = field(init=False)
    _writer: asyncio.Task[None] | None = field(default=None, init=False)
    close_code: int | None = None
    close_reason: str = ""

    def __post_init__(self) -> None:
        self._queue = asyncio.Queue()

    def start(self) -> None:
        self._writer = asyncio.ensure_future(self._write_loop())

    def push(self, text: str) -> bool:
        """Queue one frame; False (and the socket is being closed) if it cannot keep up."""
        if self.closed.is_set():
            return False
        if self._queue.qsize() >= self.queue_max:
            log.warning("closing a slow socket of %s (%d frames queued)", self.user_id, self._queue.qsize())
            self.close(Close.TRY_AGAIN_LATER, "too slow; reconnect and sync")
            return False
        self._queue.put_nowait(text)
        return True

    def push_delivery(self, user_seq: int, text: str) -> bool:
        """Push a per-user-seq delivery unless this socket already had it (replays, duplicates)."""
        if user_seq <= self.pushed_seq:
            return False
        self.pushed_seq = user_seq
        return self.push(text)

    def close(self, code: int, reason: str = "") -> None:
        """Close after the frames already queued (e.g. a ``kicked`` notice) are written."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            self._queue.put_nowait(_CLOSE)

    async def wait_closed(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), timeout_s)

    async def _write_loop(self) -> None:
        try:
            while True:
                item = await self._queue.get()
                if item is _CLOSE:
                    break
                assert isinstance(item, str)
                await self.socket.send_text(item)
        except Exception as exc:  # the peer went away: the reader side notices and cleans up
            log.debug("write to %s failed: %r", self.user_id, exc)
        finally:
            if self.close_code is not None and self.socket.application_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await self.socket.close(self.close_code, self.close_reason)
            self.closed.set()

    async def stop_writer(self) -> None:
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        self.closed.set()
