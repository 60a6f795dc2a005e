"""What one request costs the worker: the Python Cassandra driver's client CPU per key, by the
way requests are made. Starts its own Apache Cassandra node (``chat_events.engines``).

Run from the repository root::

    python -m benchmarks.bench_cql [--keys 5000] [--rounds 2]

Prints, per way of issuing ``--keys`` single-row writes or reads, keys/s and the client's CPU
per key (``getrusage`` of this process: the event loop and the driver's IO thread together):

* one request per key, each awaited through :func:`result_of` in its own asyncio task
  (:func:`gather_bounded`, 64 in flight): the store's way before issue 12;
* one request per key issued by :class:`Requests` (one hand-over to the loop for all);
* UNLOGGED batches of 20 / 100 rows, and ``IN ?`` reads of 20 / 100 keys per request.

The first round includes the JVM's JIT warm-up; compare within the last round.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from cassandra.cluster import Cluster
from cassandra.query import BatchStatement, BatchType, dict_factory

from chat_events.engines import CassandraServer
from chat_events.store.cassandra_async import Requests, result_of

T = TypeVar("T")


async def gather_bounded(calls: Iterable[Callable[[], Awaitable[T]]], limit: int = 64) -> list[T]:
    """The store's way before issue 12: one asyncio task per request, at most ``limit`` in
    flight, results in order."""
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


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def timed(name: str, keys: int, run: Callable[[], Awaitable[Any]]) -> None:
    cpu0, t0 = cpu_s(), time.perf_counter()
    await run()
    wall, cpu = time.perf_counter() - t0, cpu_s() - cpu0
    print(f"  {name:44} {keys / wall:8,.0f} keys/s  client CPU {cpu / keys * 1e6:6.1f} us/key", flush=True)


async def measure(host: str, port: int, n: int, rounds: int) -> None:
    cluster = Cluster([(host, port)], protocol_version=5)
    session = cluster.connect()
    session.row_factory = dict_factory
    session.execute(
        "CREATE KEYSPACE IF NOT EXISTS bench WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
    )
    session.execute("CREATE TABLE IF NOT EXISTS bench.t (k text PRIMARY KEY, v text)")
    insert = session.prepare("INSERT INTO bench.t (k, v) VALUES (?, ?)")
    get = session.prepare("SELECT k, v FROM bench.t WHERE k = ?")
    get_in = session.prepare("SELECT k, v FROM bench.t WHERE k IN ?")
    keys = [f"key-{i:06d}-abcdefabcdef" for i in range(n)]
    value = "x" * 200

    async def one_task_each(statement: Any, values: Callable[[str], tuple[Any, ...]]) -> None:
        await gather_bounded(
            [partial(lambda k: result_of(session.execute_async(statement, values(k))), k) for k in keys]
        )

    async def requests(statement: Any, values: Callable[[str], tuple[Any, ...]]) -> None:
        await Requests(session, [(statement, values(k)) for k in keys], 64).run()

    async def batches(size: int) -> None:
        made = []
        for start in range(0, n, size):
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for k in keys[start : start + size]:
                batch.add(insert, (k, value))
            made.append((batch, None))
        await Requests(session, made, 64).run()

    async def reads_in(size: int) -> None:
        await Requests(session, [(get_in, (keys[i : i + size],)) for i in range(0, n, size)], 64).run()

    try:
        for number in range(1, rounds + 1):
            print(f"round {number} of {rounds}", flush=True)
            await timed(
                "write: one request per key, one task each", n, partial(one_task_each, insert, lambda k: (k, value))
            )
            await timed("write: one request per key, Requests", n, partial(requests, insert, lambda k: (k, value)))
            await timed("write: UNLOGGED batches of 20", n, partial(batches, 20))
            await timed("write: UNLOGGED batches of 100", n, partial(batches, 100))
            await timed("read: one request per key, one task each", n, partial(one_task_each, get, lambda k: (k,)))
            await timed("read: one request per key, Requests", n, partial(requests, get, lambda k: (k,)))
            await timed("read: IN ? of 20 keys", n, partial(reads_in, 20))
            await timed("read: IN ? of 100 keys", n, partial(reads_in, 100))
    finally:
        cluster.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_cql", description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-cql-") as work:
        server = CassandraServer(Path(work) / "cassandra")
        print("starting Apache Cassandra ...", file=sys.stderr, flush=True)
        server.start()
        try:
            host, port = server.contact_point.rsplit(":", 1)
            asyncio.run(measure(host, int(port), args.keys, args.rounds))
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
