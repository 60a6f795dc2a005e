"""``chat-events worker``: run the stream processors until stopped.

Creates the topics (idempotent), opens the store and one publisher, and runs the Faust worker
in this process's event loop. SIGINT/SIGTERM stop it cleanly: in-flight batches are abandoned
*unacknowledged* (their records are replayed by whoever owns the partitions next), never
half-acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

import faust

from chat_events.codec.factory import build_codec
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import resolve_target
from chat_events.producers.publisher import EventPublisher
from chat_events.settings import Settings
from chat_events.store.factory import open_store
from chat_events.streams.app import build_app
from chat_events.streams.faust_transport import ChatFaustApp

log = logging.getLogger(__name__)


async def run_worker(
    settings: Settings, *, stop: asyncio.Event | None = None, on_ready: Callable[[ChatFaustApp], None] | None = None
) -> None:
    """Run until ``stop`` is set (or SIGINT/SIGTERM when ``stop`` is None)."""
    target = resolve_target(settings)
    await ensure_topics(settings, target)
    codec = build_codec(settings)
    stop = stop or _signal_event()
    async with open_store(settings) as store, EventPublisher(settings, target, codec) as publisher:
        app = build_app(settings, target, store=store, publisher=publisher, codec=codec)
        worker = _QuietWorker(
            app,
            loop=asyncio.get_running_loop(),
            loglevel="WARNING",
            override_logging=False,
            redirect_stdouts=False,
            quiet=True,
        )
        running = asyncio.ensure_future(worker.start())  # returns only when the worker stops
        stopping = asyncio.ensure_future(stop.wait())
        try:
            assigned = asyncio.ensure_future(app.chat_assigned.wait())
            await asyncio.wait([running, stopping, assigned], return_when=asyncio.FIRST_COMPLETED)
            if assigned.done() and not stopping.done():
                log.warning("worker %s consuming from %s", settings.worker_app_id, target.bootstrap_servers)
                if on_ready is not None:
                    on_ready(app)
                await asyncio.wait([running, stopping], return_when=asyncio.FIRST_COMPLETED)
            assigned.cancel()
        finally:
            stopping.cancel()
            await _stop_fully(worker, running, settings.worker_stop_timeout_s)


class _QuietWorker(faust.Worker):
    """A :class:`faust.Worker` that leaves signals to us.

    mode's Worker replaces the loop's SIGINT/SIGTERM handlers with its own, which stop the
    worker behind our back: ``run_worker`` then closed the store and the publisher while the
    agents were still mid-batch, and the interpreter hung on the agents' orphaned tasks.
    """

    def install_signal_handlers(self) -> None:
        return None


async def _stop_fully(worker: faust.Worker, running: asyncio.Future[None], timeout_s: float) -> None:
    """Stop the Faust worker and wait for it, before the caller closes the store and publisher.

    In-flight batches are cancelled unacknowledged (replayed by the next owner). If stopping
    takes longer than ``timeout_s`` we log and go on: the offsets are committed only after a
    batch's effects, so abandoning the rest is safe.
    """
    try:
        await asyncio.wait_for(worker.stop(), timeout_s)
    except TimeoutError:
        log.warning("the Faust worker did not stop within %.0fs; abandoning its tasks", timeout_s)
    if not running.done():
        running.cancel()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(asyncio.shield(running), 1.0)
    if running.done() and not running.cancelled() and running.exception() is not None:
        raise running.exception()  # type: ignore[misc]


def _signal_event() -> asyncio.Event:
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, event.set)
    return event
