"""Outputs a transactional stage sends outside its transaction: the pushes to the edges.

Why: an edge reads its own topic ``chat.edge.<edge_id>`` ``read_committed``, so a transactional
dispatch becomes visible only when its transaction commits, and only once every transaction
still open on that partition commits too (the last stable offset stops at the first open one).
The inbox partitions' producers all write to every edge's topic, so with transactions always
open somewhere under load, deliveries waited for a convoy of other partitions' transactions: a
third transactional hop, most of the default stack's latency (issue 12's figures in
docs/benchmarks.md).

Why exactly-once is not lost where it matters: an edge's topic has one reader, the edge itself,
which pushes each user seq to a socket once (a replayed dispatch is dropped by seq; a missing one
is a gap the client syncs). The store, written before any output, is the truth; a dispatch is
the fast path. So a dispatch may be sent twice (a replay after a crash or a failed transaction)
without anyone seeing it twice, while the stage's other outputs (``chat.push``, dead letters)
stay in the transaction.

Order: :class:`DirectOutputs` belongs to one input partition and hands its sub-batches'
dispatches to the shared producer in submission order (one recipient's records all come from one
inbox partition, so their order holds). The partition's transaction waits until its sub-batches'
dispatches are acknowledged before committing their offsets, so a crash after the commit cannot
lose a push; one that failed is sent again (possibly after later ones: the edge then sees a gap,
which the client syncs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from chat_events.streams.records import Output
from chat_events.streams.stage import OutputSink, is_retriable

log = logging.getLogger(__name__)


class DirectOutputs:
    """One input partition's dispatches, sent at once and in order through ``sink``.

    :meth:`send` never blocks; its future resolves once the outputs are acknowledged (or given
    up: an error that is not retriable is logged, the store still has what they announce)."""

    def __init__(
        self,
        sink: OutputSink,
        *,
        name: str,
        max_backoff_s: float = 5.0,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._sink = sink
        self._name = name
        self._max_backoff_s = max_backoff_s
        self._sleep = sleep
        self._queue: deque[tuple[Sequence[Output], asyncio.Future[None]]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._settling: set[asyncio.Task[None]] = set()

    def send(self, outputs: Sequence[Output]) -> asyncio.Future[None]:
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not outputs:
            sent.set_result(None)
            return sent
        self._queue.append((outputs, sent))
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        return sent

    async def _run(self) -> None:
        while self._queue:
            outputs, sent = self._queue.popleft()
            try:
                acknowledged: Awaitable[None] | None = await self._sink.enqueue_outputs(outputs)
            except Exception as exc:
                log.warning("%s: handing dispatches to the producer failed (%s); sending with retries", self._name, exc)
                acknowledged = None
            task = asyncio.ensure_future(self._settle(outputs, acknowledged, sent))
            self._settling.add(task)
            task.add_done_callback(self._settling.discard)

    async def _settle(
        self, outputs: Sequence[Output], acknowledged: Awaitable[None] | None, sent: asyncio.Future[None]
    ) -> None:
        delay = 0.05
        try:
            while True:
                try:
                    await (acknowledged if acknowledged is not None else self._sink.send_outputs(outputs))
                    return
                except Exception as exc:
                    if not is_retriable(exc):
                        log.error(
                            "%s: %d dispatches refused (%r): not pushed; the store has them, clients sync",
                            self._name,
                            len(outputs),
                            exc,
                        )
                        return
                    log.warning("%s: dispatches not acknowledged (%s); again in %.2fs", self._name, exc, delay)
                    acknowledged = None
                    await self._sleep(delay)
                    delay = min(delay * 2, self._max_backoff_s)
        finally:
            if not sent.done():
                sent.set_result(None)

    async def close(self) -> None:
        """Stop sending (on revocation or a replaced producer): what was not acknowledged is
        replayed by the partition's next owner."""
        tasks = [task for task in (self._task, *self._settling) if task is not None and not task.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        while self._queue:
            _, sent = self._queue.popleft()
            if not sent.done():
                sent.set_result(None)
