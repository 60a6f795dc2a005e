"""``chat-events worker`` with ``CHAT_WORKER_ENGINE=faust``: the Faust engine's process.

Like the native ``run_worker``: topics created, the store and one publisher opened, then the
Faust app of ``faust_app.py`` runs in this event loop until SIGINT/SIGTERM (or ``stop``). What
was learnt when the worker ran on Faust before (git history up to b8b9115):

* mode's Worker takes over SIGINT/SIGTERM and stopped the worker behind our back (the store and
  publisher closed while agents were mid-batch; the interpreter then hung on orphaned tasks):
  :class:`_QuietWorker` installs no signal handlers, ours set ``stop``;
* the stop order: nothing new is sent, the batches in flight are acknowledged, acked and
  committed, then the Faust worker stops (the agents are cancelled, a batch being handled is
  abandoned unacked: replayed), and only then do the store and publisher close;
* Faust's data directory goes under ``CHAT_DATA_DIR`` (its default is the working directory).

A batch that failed for good stops the worker with its error (exit code 1): nothing after it
was acked, so a restart replays it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import faust

from chat_events.codec.factory import build_codec
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import resolve_target
from chat_events.producers.publisher import EventPublisher
from chat_events.settings import Settings
from chat_events.store.factory import open_store
from chat_events.streams.faust_app import FaustWorker, build_faust_worker

log = logging.getLogger(__name__)


class _QuietWorker(faust.Worker):
    """A :class:`faust.Worker` that leaves signals (and logging) to us, without the terminal
    spinner (its escape codes landed in the worker's log)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spinner = None

    def install_signal_handlers(self) -> None:
        return None


async def run_faust_worker(
    settings: Settings, *, stop: asyncio.Event, on_ready: Callable[[FaustWorker], None] | None = None
) -> None:
    """Run until ``stop`` is set or a batch fails for good (then raise its error)."""
    target = resolve_target(settings)
    await ensure_topics(settings, target)
    codec = build_codec(settings)
    if target.transactions(settings):
        log.info("Faust engine: at-least-once with idempotent stages (CHAT_KAFKA_TRANSACTIONS applies to native)")
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
    async with open_store(settings) as store, EventPublisher(settings, target, codec) as publisher:
        worker = build_faust_worker(settings, target, store=store, publisher=publisher, codec=codec)
        faust_worker = _QuietWorker(
            worker.app,
            loop=asyncio.get_running_loop(),
            loglevel="WARNING",
            override_logging=False,
            redirect_stdouts=False,
            quiet=True,
        )
        running = asyncio.ensure_future(faust_worker.start())
        stopping = asyncio.ensure_future(stop.wait())
        assigned = asyncio.ensure_future(worker.assigned.wait())
        try:
            first: list[asyncio.Future[Any]] = [stopping, assigned, worker.failed, running]
            await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
            if assigned.done() and not stopping.done() and not worker.failed.done():
                log.info("worker %s (Faust engine) consuming from %s", settings.worker_app_id, target.bootstrap_servers)
                if on_ready is not None:
                    on_ready(worker)
                then: list[asyncio.Future[Any]] = [stopping, worker.failed]
                await asyncio.wait(then, return_when=asyncio.FIRST_COMPLETED)
        finally:
            assigned.cancel()
            stopping.cancel()
            await _stop_fully(worker, faust_worker, running, settings.worker_stop_timeout_s)
        if worker.failed.done():
            raise worker.failed.result()
        if running.done() and not running.cancelled() and running.exception() is not None:
            raise running.exception()  # type: ignore[misc]


async def _stop_fully(worker: FaustWorker, faust_worker: Any, running: asyncio.Future[None], timeout_s: float) -> None:
    """Drain and commit (unless a batch failed: then nothing more is acked), stop the Faust
    worker, and wait for it, before the caller closes the store and the publisher. Past
    ``timeout_s`` we log and go on: offsets are acked only after a batch's effects."""
    if not worker.failed.done():
        with contextlib.suppress(Exception):
            await asyncio.wait_for(worker.stop_sending(), timeout_s)
    else:
        worker.rebalances.stopping = True
    try:
        await asyncio.wait_for(faust_worker.stop(), timeout_s)
    except TimeoutError:
        log.warning("the Faust worker did not stop within %.0fs; abandoning its tasks", timeout_s)
    if not running.done():
        running.cancel()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError, Exception):
        await asyncio.wait_for(asyncio.shield(running), 1.0)
