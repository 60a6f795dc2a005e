"""cassandra-driver plumbing of the Cassandra store: the cluster built from :class:`Settings`,
the bridge from the driver's ``ResponseFuture`` to asyncio, and the mapping of driver errors.

The driver completes requests on its own IO thread and calls the future's callbacks there;
:func:`result_of` hands the result to the event loop with ``call_soon_threadsafe``, so no
coroutine ever blocks on ``ResponseFuture.result()``. Every page of a paged result is fetched
the same way (``start_fetching_next_page`` from the callback).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from cassandra import (
    ConsistencyLevel,
    OperationTimedOut,
    ReadTimeout,
    RequestValidationException,
    Unavailable,
    UnresolvableContactPoints,
    WriteTimeout,
)
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable
from cassandra.connection import ConnectionException
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.protocol import IsBootstrappingErrorMessage, OverloadedErrorMessage
from cassandra.query import BatchStatement, BatchType, dict_factory

from chat_events.errors import ChatEventsError, ConfigurationError, StoreUnavailableError
from chat_events.settings import Settings
from chat_events.store.cassandra_contact import parse_contact_points
from chat_events.store.cassandra_plan import Write, cover, pack

T = TypeVar("T")
Row = dict[str, Any]

CONCURRENCY = 64
"""Requests one store call keeps in flight at most (the driver multiplexes them per connection)."""

IN_CHUNK = 100
"""Keys per ``IN ?`` of one lookup request (:meth:`CqlSession.lookup`): one request instead of a
hundred, well under Cassandra's guardrails on partition keys and cartesian products in a SELECT."""

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


PACKED_BATCH_WARNINGS = ("Server warning: Batch for ", "Server warning: Unlogged batch covering ")
"""The server's warnings about the batches the store packs on purpose (``CqlSession.write_all``:
many partitions per UNLOGGED batch, up to ~36 KiB, over Cassandra's 5 KiB warn threshold). The
driver logs each at WARNING, two lines per batch: they go to DEBUG instead."""


class _PackedBatchWarnings(logging.Filter):
    """Demotes :data:`PACKED_BATCH_WARNINGS` of ``cassandra.protocol`` to DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and record.getMessage().startswith(PACKED_BATCH_WARNINGS):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


logging.getLogger("cassandra.protocol").addFilter(_PackedBatchWarnings())


def contact_points(settings: Settings) -> list[tuple[str, int]]:
    """``(host, port)`` per contact point (``host:port`` entries keep their port; the others get
    ``CHAT_CASSANDRA_PORT``). The driver takes these tuples as they are; a plain ``"host:port"``
    string would be resolved as a host name and fail."""
    return parse_contact_points(settings.cassandra_contact_points, settings.cassandra_port)


_TABLE_REF = re.compile(r"\b(FROM|INTO|UPDATE)\s+([A-Za-z_][A-Za-z0-9_]*)\b(?!\.)", re.IGNORECASE)


def qualify_tables(statement: str, keyspace: str) -> str:
    """``statement`` with every table reference qualified by ``keyspace`` (pure). Cassandra 5
    warns on every prepare of an unqualified statement on a session with a keyspace (``USE``, or
    protocol v5's per-statement keyspace): the statement's meaning would depend on the session."""
    return _TABLE_REF.sub(lambda m: f"{m.group(1)} {keyspace}.{m.group(2)}", statement)


def build_cluster(settings: Settings) -> Any:
    """A :class:`cassandra.cluster.Cluster` for ``settings`` (not connected yet).

    The load-balancing policy, consistency, timeout and row factory sit in the default
    execution profile (the driver refuses the legacy ``Cluster(load_balancing_policy=...)``
    keyword once profiles are used); the policy is token-aware over DC-aware round robin, so
    each request goes straight to a replica in the local data centre.
    """
    points = contact_points(settings)
    if not points:
        raise ConfigurationError("CHAT_CASSANDRA_CONTACT_POINTS is not set")
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=settings.cassandra_local_dc or "")),
        consistency_level=getattr(ConsistencyLevel, settings.cassandra_consistency),
        request_timeout=settings.cassandra_request_timeout_s,
        row_factory=dict_factory,
    )
    auth = None
    if settings.cassandra_username:
        password = settings.cassandra_password.get_secret_value() if settings.cassandra_password else ""
        auth = PlainTextAuthProvider(username=settings.cassandra_username, password=password)
    return Cluster(
        contact_points=points,
        port=settings.cassandra_port,  # peers the driver discovers without a port use this one
        auth_provider=auth,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=settings.cassandra_request_timeout_s,
        protocol_version=settings.cassandra_protocol_version,
    )


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


class _Requests:
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
                if self._finish(index, None, exc, start_next=False):
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
            self._finish(index, None, exc)
            return
        self._finish(index, page, None)

    def _on_error(self, index: int, exc: BaseException) -> None:
        self._finish(index, None, exc)

    def _finish(self, index: int, page: Any, exc: BaseException | None, *, start_next: bool = True) -> bool:
        """Count request ``index`` done; True when it was the last one."""
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


async def gather_bounded(calls: Iterable[Callable[[], Awaitable[T]]], limit: int = CONCURRENCY) -> list[T]:
    """Run ``calls`` with at most ``limit`` in flight; results in order. Every call is awaited
    to its end before the first error (if any) is raised, so no failure goes unobserved."""
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await call()

    out: list[T] = []
    for result in await asyncio.gather(*(one(call) for call in calls), return_exceptions=True):
        if isinstance(result, BaseException):
            raise result
        out.append(result)
    return out


class CqlSession:
    """A connected driver session with its statements prepared (once, in :meth:`open`), and
    the few ways the store talks to it. Nothing connects before :meth:`open`."""

    def __init__(self, settings: Settings, statements: Mapping[str, str]) -> None:
        self._settings = settings
        self._statements = dict(statements)
        self._cluster: Any = None
        self._session: Any = None
        self._prepared: dict[str, Any] = {}

    async def open(self) -> None:
        if self._session is not None:
            return
        try:
            self._cluster, self._session, self._prepared = await asyncio.to_thread(self._connect)
        except Exception as exc:
            mapped = map_error(exc)
            if mapped is None or mapped is exc:
                raise
            raise mapped from exc

    def _connect(self) -> tuple[Any, Any, dict[str, Any]]:  # blocking: runs on a worker thread
        cluster = build_cluster(self._settings)
        try:
            keyspace = self._settings.cassandra_keyspace
            session = cluster.connect()  # no USE: every statement names its keyspace
            prepared: dict[str, Any] = {}
            for name, text in self._statements.items():
                statement = session.prepare(qualify_tables(text, keyspace))
                statement.is_idempotent = True  # upserts and reads only: safe to retry
                prepared[name] = statement
        except BaseException:
            cluster.shutdown()
            raise
        return cluster, session, prepared

    async def close(self) -> None:
        cluster, self._cluster, self._session = self._cluster, None, None
        if cluster is not None:
            await asyncio.to_thread(cluster.shutdown)

    def _statement(self, name: str) -> Any:
        """The prepared statement ``name`` (raises :class:`StoreUnavailableError` before open)."""
        self._live()
        return self._prepared[name]

    def _live(self) -> Any:
        if self._session is None:
            raise StoreUnavailableError("the store is not open")
        return self._session

    async def rows(self, name: str, *values: Any) -> list[Row]:
        """Every row of one prepared statement (a write returns ``[]``)."""
        return await result_of(self._live().execute_async(self._prepared[name], values))

    async def each(self, name: str, keys: Iterable[tuple[Any, ...]]) -> list[list[Row]]:
        """One statement per key, concurrently (token-aware: each goes to a replica of its key)."""
        statement = self._statement(name)
        return await self.run([(statement, key) for key in keys])

    async def run(self, requests: Sequence[tuple[Any, Any]], limit: int = CONCURRENCY) -> list[list[Row]]:
        """Driver requests ``(statement, values)`` concurrently (see :class:`_Requests`); the
        rows of each, in order."""
        return await _Requests(self._live(), requests, limit).run()

    async def lookup(self, name: str, groups: Mapping[tuple[Any, ...], Iterable[Any]]) -> list[Row]:
        """Every row of statement ``name`` (ending in ``... IN ?``) for each group ``prefix ->
        values``: the prefix binds the leading ``?``, the values go into the ``IN``
        :data:`IN_CHUNK` at a time. One request per chunk instead of one per key: the client's
        cost per request (the driver, the hand-over to the loop) is what bounds the worker, and
        the coordinator reads the partitions of one request in parallel. The rows come back in
        no particular order; they carry their key columns, by which callers index them."""
        statement = self._statement(name)
        requests = []
        for prefix, values in groups.items():
            distinct = list(dict.fromkeys(values))
            for start in range(0, len(distinct), IN_CHUNK):
                requests.append((statement, (*prefix, distinct[start : start + IN_CHUNK])))
        return [row for found in await self.run(requests) for row in found]

    async def lookup_pairs(self, name: str, pairs: Iterable[tuple[Any, Any]]) -> list[Row]:
        """Every row of statement ``name`` (ending in ``... a IN ? AND b IN ?``, both columns of
        the partition key) for the key pairs ``(a, b)``. Cassandra reads the cartesian product
        of the two lists, so the pairs are covered by requests of at most :data:`IN_CHUNK`
        combinations each (:func:`cover`); rows of combinations nobody asked for may come back."""
        statement = self._statement(name)
        return [row for found in await self.run([(statement, c) for c in cover(pairs, IN_CHUNK)]) for row in found]

    def _batch(self, writes: Sequence[Write], kind: Any) -> Any:
        batch = BatchStatement(batch_type=kind)
        batch.is_idempotent = True
        for name, values in writes:
            batch.add(self._prepared[name], values)
        return batch

    async def batch(self, writes: Sequence[Write]) -> None:
        """One LOGGED batch: applied entirely or not at all (the batchlog replays it)."""
        await result_of(self._live().execute_async(self._batch(writes, BatchType.LOGGED)))

    async def batches(self, units: Iterable[Sequence[Write]]) -> None:
        """Atomic units packed into LOGGED batches under the size limit, run concurrently."""
        await self.run([(self._batch(batch, BatchType.LOGGED), None) for batch in pack(units)])

    async def write_all(self, units: Iterable[Sequence[Write]]) -> None:
        """Writes packed into UNLOGGED batches under the size limit, run concurrently: one
        request per batch, not per row (the client's cost per request bounds the worker). No
        atomicity across partitions: callers commit what these rows mean in a later write.
        Within a batch the statements of one partition key (of one keyspace, across tables)
        form one mutation, which Cassandra applies atomically; a unit is never split across
        batches, so a unit whose statements share one partition key is applied all or nothing."""
        requests: list[tuple[Any, Any]] = []
        for batch in pack(units):
            if len(batch) == 1:  # a lone statement (a large message) goes as itself, not as a batch
                name, values = batch[0]
                requests.append((self._prepared[name], values))
            else:
                requests.append((self._batch(batch, BatchType.UNLOGGED), None))
        await self.run(requests)
