"""Awaiting cassandra-driver requests from asyncio, and what the driver's errors mean.

The driver completes requests on its own IO thread and calls the future's callbacks there;
:func:`result_of` (one request) and :class:`Requests` (many, as one) hand the result to the
event loop with ``call_soon_threadsafe``, so no coroutine ever blocks on
``ResponseFuture.result()``. Every page of a paged result is fetched the same way
(``start_fetching_next_page`` from the callback). Driver errors are re-raised as
:class:`StoreUnavailableError` (retriable) or :class:`ConfigurationError` (:func:`map_error`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

from cassandra import (
    OperationTimedOut,
    ReadTimeout,
    RequestValidationException,
    Unavailable,
    UnresolvableContactPoints,
    WriteTimeout,
)
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionException
from cassandra.protocol import IsBootstrappingErrorMessage, OverloadedErrorMessage

from chat_events.errors import ChatEventsError, ConfigurationError, StoreUnavailableError

Row = dict[str, Any]

UNAVAILABLE: tuple[type[BaseException], ...] = (
    NoHostAvailable,
    OperationTimedOut,
    Unavailable,
    ReadTimeout,
    WriteTimeout,
    ConnectionException,
    OverloadedErrorMessage,
    IsBootstrappingErrorMessage,
    UnresolvableContactPoints,  # DNS not (yet) answering for the contact points
)
"""Driver errors that mean "the cluster did not answer in time": retriable."""


def map_error(exc: BaseException) -> ChatEventsError | None:
    """The chat-events error for a driver error, or ``None`` for anything else (a bug)."""
    if isinstance(exc, ChatEventsError):
        return exc
    if isinstance(exc, UNAVAILABLE):
        return StoreUnavailableError(f"cassandra: {type(exc).__name__}: {exc}")
    if isinstance(exc, RequestValidationException):  # unconfigured table, bad credentials, ...
        return ConfigurationError(f"cassandra: {type(exc).__name__}: {exc} (has `chat-events store init` run?)")
    return None


def _settle(done: asyncio.Future[list[Row]], rows: list[Row] | None, exc: BaseException | None) -> None:
    if done.done():  # the awaiting task was cancelled
        return
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(rows or [])


async def result_of(response_future: Any) -> list[Row]:
    """Every row of a driver ``ResponseFuture`` (all pages), awaited without blocking the loop.
    Driver errors are re-raised as :class:`StoreUnavailableError` / :class:`ConfigurationError`."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[list[Row]] = loop.create_future()
    rows: list[Row] = []

    def hand_over(result: list[Row] | None, exc: BaseException | None) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_settle, done, result, exc)

    def on_page(page: Iterable[Row] | None) -> None:  # driver IO thread (or here, if already done)
        try:
            if page:
                rows.extend(page)
            if response_future.has_more_pages:
                response_future.start_fetching_next_page()  # on_page runs again for it
                return
        except BaseException as exc:
            hand_over(None, exc)
            return
        hand_over(rows, None)

    def on_error(exc: BaseException) -> None:
        hand_over(None, exc)

    response_future.add_callbacks(on_page, on_error)
    try:
        return await done
    except Exception as exc:
        mapped = map_error(exc)
        if mapped is None or mapped is exc:
            raise
        raise mapped from exc


class Requests:
    """Many driver requests awaited as one: at most ``limit`` in flight, the next one started
    from the driver's IO thread as one completes, and a single hand-over to the event loop when
    the last is done, instead of a task and a hand-over per request. Measured
    (``benchmarks/bench_cql.py``): that saves only ~10% of a request's client CPU (~200-260 us
    each either way on this machine); what counts is fewer requests (``IN ?``, batches, ~7-18 us
    per key). Every request runs to its end before the first error is raised."""

    def __init__(self, session: Any, requests: Sequence[tuple[Any, Any]], limit: int) -> None:
        self._session = session
        self._requests = requests
        self._limit = limit
        self._results: list[list[Row]] = [[] for _ in requests]
        self._next = 0
        self._pending = len(requests)
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._loop = asyncio.get_running_loop()
        self._done: asyncio.Future[None] = self._loop.create_future()

    async def run(self) -> list[list[Row]]:
        if not self._requests:
            return []
        for _ in range(min(self._limit, len(self._requests))):
            self._start_next()
        try:
            await self._done
        except asyncio.CancelledError:
            with self._lock:  # start nothing more; what is in flight finishes on its own
                self._next = len(self._requests)
            raise
        if self._error is not None:
            mapped = map_error(self._error)
            if mapped is None or mapped is self._error:
                raise self._error
            raise mapped from self._error
        return self._results

    def _start_next(self) -> None:
        while True:  # a loop, not recursion, past requests that fail before they go out
            with self._lock:
                index = self._next
                if index >= len(self._requests):
                    return
                self._next += 1
            statement, values = self._requests[index]
            try:
                future = self._session.execute_async(statement, values)
            except BaseException as exc:  # a bind error: this request fails, the others go on
                if self._finish(exc, start_next=False):
                    return
                continue
            future.add_callbacks(partial(self._on_page, index, future), partial(self._on_error, index))
            return

    def _on_page(self, index: int, future: Any, page: Iterable[Row] | None) -> None:
        try:
            if page:
                self._results[index].extend(page)
            if future.has_more_pages:
                future.start_fetching_next_page()
                return
        except BaseException as exc:
            self._finish(exc)
            return
        self._finish(None)

    def _on_error(self, index: int, exc: BaseException) -> None:
        self._finish(exc)

    def _finish(self, exc: BaseException | None, *, start_next: bool = True) -> bool:
        """Count one request done (failed with ``exc``); True when it was the last one."""
        with self._lock:
            if exc is not None and self._error is None:
                self._error = exc
            self._pending -= 1
            last = self._pending == 0
        if last:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                self._loop.call_soon_threadsafe(_resolve, self._done)
        elif start_next:
            self._start_next()
        return last


def _resolve(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)
