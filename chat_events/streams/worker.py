"""``chat-events worker``: run the stream processors until stopped.

Creates the topics (idempotent), opens the store and one publisher, starts the consumer all
stages share and runs the :class:`Worker` in this process's event loop. SIGINT/SIGTERM stop it
cleanly: each runner waits (bounded) for the batch whose outputs are in flight, commits what is
done, and leaves its group; a batch being handled is abandoned *uncommitted* (replayed by
whoever owns the partitions next), never half-committed. Only then are the store and the
publisher closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from typing import Any

from aiokafka.errors import KafkaConnectionError, KafkaError

from chat_events.codec.factory import build_codec
from chat_events.errors import BrokerUnavailableError, ConfigurationError
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import resolve_target
from chat_events.kafka.log_noise import coordinator_startup_demoted
from chat_events.producers.publisher import EventPublisher
from chat_events.settings import Settings
from chat_events.store.factory import open_store
from chat_events.streams.app import Worker, build_worker

log = logging.getLogger(__name__)


async def run_worker(
    settings: Settings, *, stop: asyncio.Event | None = None, on_ready: Callable[[Any], None] | None = None
) -> None:
    """Run until ``stop`` is set (or SIGINT/SIGTERM when ``stop`` is None). ``on_ready`` is
    called once every stage holds its first partition assignment. ``CHAT_WORKER_ENGINE=faust``
    runs the same stages as Faust agents instead (``faust_worker.py``, the ``faust`` extra)."""
    if settings.worker_engine == "faust":
        try:
            from chat_events.streams.faust_worker import run_faust_worker  # faust is an optional extra
        except ModuleNotFoundError as exc:
            raise ConfigurationError(
                f"CHAT_WORKER_ENGINE=faust needs faust-streaming ({exc}): pip install 'chat-events[faust]'"
            ) from exc

        await run_faust_worker(settings, stop=stop or _signal_event(), on_ready=on_ready)
        return
    target = resolve_target(settings)
    await ensure_topics(settings, target)
    codec = build_codec(settings)
    stop = stop or _signal_event()
    starting = contextlib.ExitStack()  # until the first assignment (a fresh Kafka's first join: see log_noise)
    starting.enter_context(coordinator_startup_demoted())
    with starting:
        async with open_store(settings) as store, EventPublisher(settings, target, codec) as publisher:
            worker = build_worker(settings, target, store=store, publisher=publisher, codec=codec)
            await _start_consumer(worker, settings)
            running = asyncio.ensure_future(worker.run())
            stopping = asyncio.ensure_future(stop.wait())
            assigned = asyncio.ensure_future(worker.wait_assigned())
            try:
                await asyncio.wait([running, stopping, assigned], return_when=asyncio.FIRST_COMPLETED)
                starting.close()
                if assigned.done() and not stopping.done() and not running.done():
                    log.info("worker %s consuming from %s", settings.worker_app_id, target.bootstrap_servers)
                    if on_ready is not None:
                        on_ready(worker)
                    await asyncio.wait([running, stopping], return_when=asyncio.FIRST_COMPLETED)
            finally:
                assigned.cancel()
                stopping.cancel()
                await _stop_fully(worker, running, settings.worker_stop_timeout_s)


async def _start_consumer(worker: Worker, settings: Settings) -> None:
    try:
        async with asyncio.timeout(settings.kafka_connect_timeout_s):
            await worker.consumer.start()
    except (KafkaConnectionError, KafkaError, TimeoutError, OSError) as exc:
        await worker.consumer.stop()
        raise BrokerUnavailableError(f"cannot reach Kafka at {worker.target.bootstrap_servers}: {exc}") from exc
    worker.subscribe()


async def _stop_fully(worker: Worker, running: asyncio.Future[None], timeout_s: float) -> None:
    """Stop the runners and wait for them (each drains its batch in flight and commits), then
    leave the consumer groups, before the caller closes the store and the publisher.

    If stopping takes longer than ``timeout_s`` we log and go on: offsets are committed only
    after a batch's effects, so abandoning the rest is safe.
    """
    running.cancel()
    try:
        await asyncio.wait_for(asyncio.shield(running), timeout_s)
    except asyncio.CancelledError:
        pass
    except TimeoutError:
        log.warning("the worker did not stop within %.0fs; abandoning its tasks", timeout_s)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(worker.consumer.stop(), timeout_s)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(worker.close(), timeout_s)
    if running.done() and not running.cancelled() and running.exception() is not None:
        raise running.exception()  # type: ignore[misc]


def _signal_event() -> asyncio.Event:
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, event.set)
    return event
