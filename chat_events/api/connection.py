"""One signed-in socket: who it is, and a bounded outbound queue written in order.

Deliveries never wait on a slow client: :meth:`Connection.push` only enqueues. A socket whose
queue overflows is closed with 1013 (try again later); the client reconnects and syncs, so
nothing is lost — the inbox in the store is the source of truth, pushes are a fast path.

An edge holds 10,000+ mostly idle sockets, so an idle one costs as little as possible: its
queue and the task that writes it exist only while frames are waiting (the writer exits when
the queue is empty and the next push starts a new one), and its idle timeout is one shared
sweep (:mod:`chat_events.api.idle`), not a timer per socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
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
    """Highest per-user seq this socket acked (``ack`` frames)."""
    stored_acked_seq: int = 0
    """The device's stored sync progress at sign-in (``store/progress.py``): where a ``sync``
    without ``seq`` starts, unless this socket has acked further."""
    room_id: str | None = None
    room_seq: int = 0
    close_code: int | None = None
    close_reason: str = ""
    idle_since_s: float = 0.0
    """``time.monotonic()`` when the reader last started waiting for a frame (see :mod:`idle`)."""
    wake: Callable[[], None] | None = None
    """Set by the session while it reads: interrupts its reader (closed, or silent too long)."""
    _queue: deque[object] | None = field(default=None, init=False)
    """Frames (and the close marker) not yet written; None while there are none."""
    _writer: asyncio.Task[None] | None = field(default=None, init=False)
    _started: bool = field(default=False, init=False)
    _closed: bool = field(default=False, init=False)
    _closed_event: asyncio.Event | None = field(default=None, init=False)

    @property
    def closed(self) -> bool:
        """True once the writer is done: the close frame was sent, the socket failed, or it was stopped."""
        return self._closed

    @property
    def queued(self) -> int:
        """Frames waiting to be written."""
        return len(self._queue) if self._queue is not None else 0

    def start(self) -> None:
        """Write what was queued so far (after the sign-in answer), and from now on what is pushed."""
        self._started = True
        self._write_soon()

    def push(self, text: str) -> bool:
        """Queue one frame; False if it will not be written (too slow: the socket is being
        closed; or already closing)."""
        if self._closed or self.close_code is not None:
            return False
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        if len(queue) >= self.queue_max:
            log.warning("closing a slow socket of %s (%d frames queued)", self.user_id, len(queue))
            self.close(Close.TRY_AGAIN_LATER, "too slow; reconnect and sync")
            return False
        queue.append(text)
        self._write_soon()
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
            if self._closed:
                return
            if self._queue is None:
                self._queue = deque()
            self._queue.append(_CLOSE)
            self._write_soon()

    async def wait_closed(self, timeout_s: float) -> None:
        if self._closed:
            return
        if self._closed_event is None:
            self._closed_event = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed_event.wait(), timeout_s)

    async def stop_writer(self) -> None:
        writer = self._writer
        if writer is not None and not writer.done():
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        self._mark_closed()

    def _write_soon(self) -> None:
        if self._started and self._writer is None and self._queue:
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    async def _write_loop(self) -> None:
        queue = self._queue
        assert queue is not None
        drained = False
        try:
            while queue:
                item = queue.popleft()
                if item is _CLOSE:
                    break
                assert isinstance(item, str)
                await self.socket.send_text(item)
            else:
                drained = True
        except Exception as exc:  # the peer went away: the reader side notices and cleans up
            log.debug("write to %s failed: %r", self.user_id, exc)
        finally:
            self._writer = None
            if drained:  # idle again: the next push starts a new writer
                if self._queue is queue:
                    self._queue = None
            else:  # closing, failed, or stopped
                if self.close_code is not None and self.socket.application_state == WebSocketState.CONNECTED:
                    with contextlib.suppress(Exception):
                        await self.socket.close(self.close_code, self.close_reason)
                self._mark_closed()

    def _mark_closed(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue = None
        if self._closed_event is not None:
            self._closed_event.set()
        if self.wake is not None:
            self.wake()
