"""Per-user deliveries to the application: in ``user_seq`` order, each seq once, gaps filled.

Pushes and ``sync`` pages both go through one :class:`~chat_events.client.inbox.Inbox`; what it
releases is queued for :meth:`DeliveryQueue.receive`. A catch-up (sync from the inbox's last
seq until ``has_more`` is false and no hole is left) runs on connect and whenever a push skips
seqs; a hole the server cannot fill is queued, at its place, as :class:`GapNotRecoverable`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from chat_events.client.errors import ChatClientError, GapNotRecoverable
from chat_events.client.inbox import Inbox, Verdict
from chat_events.client.mailbox import Mailbox
from chat_events.client.models import Delivery, SyncPage

logger = logging.getLogger("chat_events.client")

SyncPageFn = Callable[[int, int], Awaitable[SyncPage]]
"""``sync(seq, limit)`` on one connection; raises :class:`GapNotRecoverable` on code 12."""

STALL_RETRIES = 3
"""Syncs that do not fill a hole a push revealed before it is reported as not recoverable."""
STALL_BACKOFF_S = 0.05


class DeliveryQueue:
    def __init__(self, last_seq: int = 0, *, page_size: int) -> None:
        self._inbox = Inbox(last_seq)
        self._page_size = page_size
        self._queue: Mailbox[Delivery | GapNotRecoverable] = Mailbox()
        self._delivered_seq = last_seq
        self._task: asyncio.Task[Exception | None] | None = None
        self._task_key: object = None

    @property
    def last_seq(self) -> int:
        """The highest seq handed to the application (what to resume from)."""
        return self._delivered_seq

    async def receive(self, timeout_s: float | None = None) -> Delivery:
        """The next delivery; raises a queued :class:`GapNotRecoverable` once, or the failure set by :meth:`fail`."""
        item = await self._queue.get(timeout_s)
        if isinstance(item, GapNotRecoverable):
            self._delivered_seq = item.resume_seq
            raise item
        self._delivered_seq = item.user_seq
        return item

    def resume_at(self, seq: int) -> None:
        """Before anything was delivered: continue after ``seq`` (see :meth:`Inbox.resume_at`)."""
        self._queue.extend(self._inbox.resume_at(seq))
        self._delivered_seq = max(self._delivered_seq, seq)

    def fail(self, error: BaseException | None) -> None:
        """Make :meth:`receive` raise ``error`` once the queue is drained (None: clear it)."""
        self._queue.fail(error)

    def push(self, delivery: Delivery) -> bool:
        """Take a live push; True if it revealed a hole (start a catch-up)."""
        return self._accept(delivery) is Verdict.GAP

    def catch_up(self, key: object, sync: SyncPageFn) -> asyncio.Task[Exception | None]:
        """Start syncing (one catch-up at a time; ``key`` names the connection ``sync`` uses: a
        catch-up for another key replaces the running one, for the same key joins it)."""
        task = self._task
        if task is not None and not task.done():
            if self._task_key is key:
                return task  # it re-checks for holes before it ends
            task.cancel()
        self._task_key = key
        self._task = asyncio.create_task(self._catch_up(sync), name="chat-client-catch-up")
        return self._task

    @staticmethod
    async def finished(task: asyncio.Task[Exception | None]) -> None:
        """Wait for a catch-up; raise what stopped it (a cancelled one, replaced, is not an error)."""
        await asyncio.wait({task})
        if not task.cancelled() and (error := task.result()) is not None:
            raise error

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task})

    def _accept(self, delivery: Delivery) -> Verdict:
        verdict, released = self._inbox.offer(delivery.user_seq, delivery.message)
        self._queue.extend(released)
        return verdict

    def _surface(self, gap: GapNotRecoverable) -> None:
        logger.warning("seqs %d..%d are not recoverable; resuming after %d", gap.from_seq, gap.to_seq, gap.resume_seq)
        self._queue.put(gap)
        self._queue.extend(self._inbox.skip_to(gap.resume_seq))

    async def _catch_up(self, sync: SyncPageFn) -> Exception | None:
        """Returns (rather than raises) what stopped it, so a background run leaves no
        unretrieved exception; :meth:`finished` raises it for a caller that waits."""
        inbox = self._inbox
        stalled = 0
        try:
            while True:
                seq = inbox.last_seq
                try:
                    page = await sync(seq, self._page_size)
                except GapNotRecoverable as gap:
                    self._surface(gap)
                    if inbox.last_seq == seq:
                        return gap  # resume_seq does not move us: asking again would loop
                    continue
                for delivery in page.messages:
                    self._accept(delivery)
                if not page.has_more and not inbox.needs_sync:
                    return None
                if inbox.last_seq > seq:
                    stalled = 0
                    continue
                stalled += 1  # the page did not move last_seq: the server lacks what a push skipped
                if stalled > STALL_RETRIES:
                    hole = inbox.gap
                    if hole is None:
                        return None
                    self._surface(GapNotRecoverable(*hole, hole[1], "sync does not return these seqs"))
                    stalled = 0
                    continue
                await asyncio.sleep(STALL_BACKOFF_S * 2**stalled)
        except (ChatClientError, TimeoutError, ValueError) as exc:
            logger.info("catch-up stopped: %s", exc)
            return exc
