"""cassandra-driver plumbing of the Cassandra store: the cluster built from :class:`Settings`
and :class:`CqlSession`, the few ways the store talks to it. Awaiting requests from asyncio and
the meaning of driver errors are in ``cassandra_async.py``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cassandra import ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import BatchStatement, BatchType, dict_factory

from chat_events.errors import ConfigurationError, StoreUnavailableError
from chat_events.settings import Settings
from chat_events.store.cassandra_async import Requests, Row, map_error, result_of
from chat_events.store.cassandra_contact import parse_contact_points
from chat_events.store.cassandra_plan import Write, cover, pack

CONCURRENCY = 64
"""Requests one store call keeps in flight at most (the driver multiplexes them per connection)."""

IN_CHUNK = 100
"""Keys per ``IN ?`` of one lookup request (:meth:`CqlSession.lookup`): one request instead of a
hundred, well under Cassandra's guardrails on partition keys and cartesian products in a SELECT."""

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
        """Driver requests ``(statement, values)`` concurrently (see :class:`Requests`); the
        rows of each, in order."""
        return await Requests(self._live(), requests, limit).run()

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
