"""Worker throughput, group delivery rate, end-to-end latency and profile: one ``chat-events worker``.

Run from the repository root::

    python -m benchmarks.bench_worker [--messages 20000] [--group-messages 1000] [--profiler cprofile]
                                      [--stack embedded|kafka|kafka-cassandra|all]
                                      [--transactions on|off|both] [--json PATH] [--markdown]

Broker and store (``--stack``, see :mod:`benchmarks.stacks`): ``embedded`` (default) = the
embedded broker (Tansu, memory-only, no idempotent producer) started for this run, or an
external cluster when ``CHAT_KAFKA_BOOTSTRAP_SERVERS`` is set, and the embedded SQLite store;
``kafka`` = real Apache Kafka started for this run and SQLite; ``kafka-cassandra`` = real Kafka
and real Cassandra (a fresh keyspace per scenario, schema initialised); ``all`` = each in turn,
then one comparison table. ``--transactions on|off|both`` sets ``CHAT_KAFKA_TRANSACTIONS`` for
the workers on real Kafka (``both``: every real-Kafka stack twice, on then off, on the same
engines); without it the product default (``auto`` = on for real Kafka) applies, and the
embedded broker is always without transactions. Every scenario gets its own topic prefix,
consumer group and fresh data directory (under one temporary directory, removed at the end), so
nothing is shared between them.

The worker is a separate process (``python -m chat_events.cli.main worker``), so the load
generator never shares its core or its GIL; this process pre-publishes with
``EventPublisher.publish_many`` *before* the worker starts, then only polls the store read-only
(``SELECT COUNT(*) FROM inbox`` every ``--poll-ms``; on Cassandra the sum of ``user_seqs.max_seq``,
written in the same batch as each user's inbox rows, instead of a full scan). Scenarios:

1. **1:1 throughput**: ``--messages`` personalChatSent among ``--users`` users in fixed pairs,
   pre-published; then the worker starts and is timed from its "worker ready" line until all
   ``2 * messages`` inbox rows (sender's and recipient's copy) exist. The end is the largest
   ``inbox.created_at_ms`` (written by the worker). Nobody is online, so every recipient's copy
   also produces an offline push record.
2. **Group deliveries**: a worker stores a ``groupCreated`` (``--group-size`` members) and a
   ``userConnected`` on one fake edge for every member, then stops; ``--group-messages`` from
   ``--group-senders`` members are pre-published, the worker starts again and is timed until
   ``group-size * group-messages`` inbox rows exist. Every delivery also sends a
   messageDispatched to the edge's delivery topic (created first); its records are counted.
3. **Latency**: with the worker running and idle, 1:1 messages are published open-loop at
   ``--latency-rate`` per second for ``--latency-seconds``; latency = the recipient's inbox row
   ``created_at_ms`` minus the wall-clock send time (same host clock, ms resolution).
4. **Profile**: scenario 1 again (``--profile-messages``) with the worker under a profiler, from
   "worker ready" to the last row. ``cprofile`` (default): the event-loop thread, wall clock
   (this module's ``--profiled-worker`` mode runs ``run_worker`` like ``chat-events worker`` and
   writes the profile on SIGHUP, so start-up and shutdown are not in it); time waiting in epoll
   is reported as idle, the rest by area (codec, validation, stage logic, store calls, aiokafka,
   Faust/mode, asyncio). ``py-spy`` (``pip install py-spy``): every thread sampled, attached after
   "worker ready", so the SQLite store thread and Faust's consumer thread are in it too.

Every throughput run also reports CPU from ``/proc``: the worker's event-loop thread, its other
threads (Faust's consumer thread, the SQLite store thread), the broker (Tansu or the Kafka JVM),
Cassandra's JVM and this process's poller; the latency run also over the second of idle before
its load (worker ready and warmed up, nothing to do).
The worker often does not exit after SIGINT (see ``docs/benchmarks.md``); after
``--stop-timeout`` it is killed, which does not affect the figures (taken before the stop).
``--worker-env CHAT_X=V`` changes a worker setting for experiments.

The edge in scenario 2 never sends heartbeats, so the group workers run with
``CHAT_EDGE_HEARTBEAT_TIMEOUT_MS`` = 1 h (otherwise its sessions expire after 15 s mid-run).
Everything else is the product's default configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import platform
import pstats
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sized
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiokafka
from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks.bench_codec import TEXT, make_envelope
from benchmarks.report import comparison_markdown, comparison_rows, comparison_text, emit
from benchmarks.stacks import (
    Stack,
    add_stack_argument,
    external_kafka,
    keyspace_name,
    stacks_to_run,
    started_stack,
)
from chat_events.codec.factory import build_codec
from chat_events.events import Envelope
from chat_events.events.factory import new_envelope
from chat_events.events.types import GroupCreated, MessageDispatchedBatch, PersonalChatSent, UserConnected
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget, fetch_wait_ms
from chat_events.producers import EventPublisher
from chat_events.settings import Settings
from chat_events.topics import TopicCatalog

ONE_TO_ONE_AIM = 5_000
"""Aim of the issue: messages/s persisted and fanned out, 1:1, one worker."""
GROUP_AIM = 50_000
"""Aim of the issue: deliveries (inbox writes) per second in 100-member groups, one worker."""

REPO_ROOT = Path(__file__).resolve().parents[1]
READY_LINE = b"worker ready"
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
EDGE_TIMEOUT_MS = 3_600_000
T = TypeVar("T", bound=Sized)


# --- processes ------------------------------------------------------------------------------


def cpu_seconds(stat_path: Path) -> float | None:
    """utime + stime of a process or thread from ``/proc/.../stat`` (None when unavailable)."""
    try:
        fields = stat_path.read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of ``pid``: ``main`` (the event-loop thread) and ``other`` (SQLite store
    thread, executors); empty when ``/proc`` is not there."""
    out = {"main": 0.0, "other": 0.0}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return {}
    for tid in tids:
        seconds = cpu_seconds(Path(f"/proc/{pid}/task/{tid}/stat"))
        if seconds is not None:
            out["main" if int(tid) == pid else "other"] += seconds
    return out


def kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


class WorkerProcess:
    """One worker process (own session/process group, output to a log file)."""

    def __init__(self, env: dict[str, str], log_path: Path, *, profile_path: Path | None = None) -> None:
        self.env = env
        self.log_path = log_path
        self.profile_path = profile_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.ready_at = 0.0
        self.clean_stop: bool | None = None

    def spawn(self) -> None:
        if self.profile_path is not None:
            command = [sys.executable, "-m", "benchmarks.bench_worker", "--profiled-worker", str(self.profile_path)]
        else:
            command = [sys.executable, "-m", "chat_events.cli.main", "worker"]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                command,
                env=self.env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.started = time.time()

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def is_ready(self) -> bool:
        """True once the ready line is in the log; raises if the process died."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
        return READY_LINE in self.log_path.read_bytes()

    async def wait_ready(self, timeout_s: float) -> float:
        """Wall-clock time (``time.time()``) at which the ready line was seen (polled every 10 ms)."""
        deadline = time.monotonic() + timeout_s
        while not self.is_ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker not ready within {timeout_s:g}s:\n{self.log_tail()}")
            await asyncio.sleep(0.01)
        self.ready_at = time.time()
        return self.ready_at

    def cpu(self) -> dict[str, float]:
        return thread_cpu(self.proc.pid) if self.proc is not None and self.proc.poll() is None else {}

    async def write_profile(self, timeout_s: float = 60.0) -> None:
        """Ask the profiled worker to write its profiles (SIGHUP) and wait until it has."""
        assert self.proc is not None
        kill_group(self.proc, signal.SIGHUP)
        deadline = time.monotonic() + timeout_s
        while b"profile written" not in self.log_path.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the profiled worker wrote no profile:\n{self.log_tail()}")
            await asyncio.sleep(0.05)

    def stop(self, timeout_s: float) -> bool:
        """SIGINT, SIGKILL after ``timeout_s``; True if it exited by itself within the time."""
        proc = self.proc
        if proc is None:
            return True
        clean = True
        if proc.poll() is None:
            kill_group(proc, signal.SIGINT)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                clean = False
        kill_group(proc, signal.SIGKILL)  # anything left in its process group
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        self.clean_stop = clean
        return clean


class PySpy:
    """``py-spy record`` attached to a running worker until :meth:`stop`."""

    def __init__(self, pid: int, out: Path, rate: int) -> None:
        binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        command = [binary, "record", "--pid", str(pid), "--format", "raw", "--threads", "--nolineno"]
        command += ["--full-filenames", "--rate", str(rate), "--output", str(out)]
        self.out = out
        self.log_path = out.with_suffix(".log")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )

    def stop(self) -> None:
        if self.proc.poll() is None:
            kill_group(self.proc, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                kill_group(self.proc, signal.SIGKILL)
                self.proc.wait(10)
        if not self.out.exists():
            raise RuntimeError(f"py-spy wrote no profile: {self.log_path.read_text(errors='replace')[-2000:]}")


def py_spy_available() -> bool:
    return bool(shutil.which("py-spy")) or Path(sys.executable).with_name("py-spy").exists()


# --- the store, read-only -------------------------------------------------------------------


class StoreReader:
    """Read-only queries on the worker's SQLite file (WAL: never blocks the writer)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection | None:
        if self._db is None and self._path.exists():
            try:
                self._db = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, timeout=10.0)
                self._db.execute("SELECT COUNT(*) FROM inbox").fetchone()
            except sqlite3.Error:  # the worker has not created the schema yet
                self.close()
        return self._db

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        db = self._conn()
        if db is None:
            return 0
        try:
            row = db.execute(sql, params).fetchone()
        except sqlite3.OperationalError:
            return 0
        return int(row[0] or 0) if row else 0

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        db = self._conn()
        return [] if db is None else db.execute(sql, params).fetchall()

    def inbox_count(self) -> int:
        return self.scalar("SELECT COUNT(*) FROM inbox")

    def inbox_created_ms(self) -> list[int]:
        return [int(r[0]) for r in self.rows("SELECT created_at_ms FROM inbox")]

    def inbox_rows(self) -> dict[tuple[str, str], int]:
        """``created_at_ms`` per (user, message)."""
        return {(u, m): c for u, m, c in self.rows("SELECT user_id, message_id, created_at_ms FROM inbox")}

    def messages_count(self) -> int:
        return self.scalar("SELECT COUNT(*) FROM messages")

    def active_members(self, group_id: str) -> int:
        return self.scalar("SELECT COUNT(*) FROM group_members WHERE group_id = ? AND active = 1", (group_id,))

    def active_sessions(self, edge_id: str) -> int:
        return self.scalar("SELECT COUNT(*) FROM sessions WHERE edge_id = ? AND active = 1", (edge_id,))

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()


class CassandraReader:
    """The same questions asked of the scenario's Cassandra keyspace. The polled count is the
    sum of ``user_seqs.max_seq`` (one row per user, raised in the same batch as that user's
    inbox rows), so polling never scans the inbox; the rows themselves are read once at the end."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._cluster: Any = None
        self._session: Any = None

    def _run(self, cql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        if self._session is None:
            from chat_events.store.cassandra_driver import build_cluster

            self._cluster = build_cluster(self._settings)
            self._session = self._cluster.connect(self._settings.cassandra_keyspace)
        return list(self._session.execute(cql, params, timeout=60))

    def inbox_count(self) -> int:
        return sum(int(r["max_seq"] or 0) for r in self._run("SELECT max_seq FROM user_seqs"))

    def inbox_created_ms(self) -> list[int]:
        return [int(r["created_at_ms"]) for r in self._run("SELECT created_at_ms FROM inbox")]

    def inbox_rows(self) -> dict[tuple[str, str], int]:
        found = self._run("SELECT user_id, message_id, created_at_ms FROM inbox")
        return {(r["user_id"], r["message_id"]): int(r["created_at_ms"]) for r in found}

    def messages_count(self) -> int:
        return int(self._run("SELECT COUNT(*) FROM messages_by_id")[0]["count"])

    def active_members(self, group_id: str) -> int:
        return sum(
            bool(r["active"]) for r in self._run("SELECT active FROM group_members WHERE group_id = %s", (group_id,))
        )

    def active_sessions(self, edge_id: str) -> int:
        return sum(
            bool(r["active"]) for r in self._run("SELECT active FROM sessions_by_edge WHERE edge_id = %s", (edge_id,))
        )

    def close(self) -> None:
        cluster, self._cluster, self._session = self._cluster, None, None
        if cluster is not None:
            cluster.shutdown()


Reader = StoreReader | CassandraReader


@dataclass(slots=True)
class Wait:
    done_at: float
    """Wall-clock time the poller saw the expected count."""
    polls: int
    poll_cpu_s: float
    """This process's CPU time while polling (what the measurement itself cost)."""
    count: int


async def wait_for_count(
    count_of: Callable[[], int], expected: int, *, timeout_s: float, poll_s: float, worker: WorkerProcess
) -> Wait:
    cpu0, deadline, polls = time.process_time(), time.monotonic() + timeout_s, 0
    count = 0
    while True:
        count = count_of()
        polls += 1
        if count >= expected:
            return Wait(time.time(), polls, time.process_time() - cpu0, count)
        if worker.proc is not None and worker.proc.poll() is not None:
            raise RuntimeError(f"worker exited with {worker.proc.returncode}:\n{worker.log_tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {count:,} of {expected:,} after {timeout_s:g}s:\n{worker.log_tail(1500)}")
        await asyncio.sleep(poll_s)


async def settled(read: Callable[[], T], expected: int, timeout_s: float = 10.0) -> T:
    """``read()`` until its result has ``expected`` items (a Cassandra batch across partitions
    is not isolated: the polled count can lead the rows by a moment), or the bound passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = read()
        if len(value) >= expected or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.2)


# --- scenarios ------------------------------------------------------------------------------


@dataclass(slots=True)
class Context:
    stack: Stack
    root: Path
    run_id: str
    args: argparse.Namespace
    transactions: str | None = None
    """``CHAT_KAFKA_TRANSACTIONS`` for the workers (None: the product default)."""
    engine: str | None = None
    """``CHAT_WORKER_ENGINE`` for the workers (None: the product default, native)."""
    workers: list[WorkerProcess] = field(default_factory=list)
    spies: list[PySpy] = field(default_factory=list)
    unclean_stops: list[str] = field(default_factory=list)
    worker_env: dict[str, str] = field(default_factory=dict)
    schema_s: list[float] = field(default_factory=list)
    """Seconds each Cassandra keyspace took to create (not in any timed window)."""

    @property
    def target(self) -> KafkaTarget:
        return self.stack.target

    @property
    def broker_pid(self) -> int | None:
        return self.stack.broker_pid

    @property
    def cassandra_pid(self) -> int | None:
        return self.stack.cassandra_pid

    @property
    def label(self) -> str:
        label = self.stack.name + (f", transactions {self.transactions}" if self.transactions else "")
        return label + (f", {self.engine}" if self.engine else "")


@dataclass(slots=True)
class Scenario:
    name: str
    settings: Settings
    env: dict[str, str]
    reader: Reader


def scenario_env(ctx: Context, name: str, data_dir: Path, **extra_env: str) -> dict[str, str]:
    """The variables of a scenario's workers: the stack's, then the scenario's, then ``--worker-env``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    keyspace = keyspace_name(ctx.run_id, name) if ctx.stack.cassandra else None
    env.update(ctx.stack.child_env(keyspace))
    env.update(
        CHAT_DATA_DIR=str(data_dir),
        CHAT_TOPIC_PREFIX=f"benchw{ctx.run_id}-{name}.",
        CHAT_WORKER_APP_ID=f"bench-worker-{ctx.run_id}-{name}",
    )
    if ctx.transactions:
        env["CHAT_KAFKA_TRANSACTIONS"] = ctx.transactions
    if ctx.engine:
        env["CHAT_WORKER_ENGINE"] = ctx.engine
    env.update(extra_env)
    env.update(ctx.worker_env)
    return env


def settings_of(env: dict[str, str]) -> Settings:
    values: dict[str, Any] = {k[len("CHAT_") :].lower(): v for k, v in env.items() if k.startswith("CHAT_")}
    return Settings(**values)


async def new_scenario(ctx: Context, name: str, **extra_env: str) -> Scenario:
    """A fresh data directory (and on Cassandra a fresh keyspace with the schema) for ``name``."""
    data_dir = ctx.root / name
    data_dir.mkdir(parents=True)
    env = scenario_env(ctx, name, data_dir, **extra_env)
    settings = settings_of(env)
    reader: Reader
    if ctx.stack.cassandra:
        ctx.schema_s.append(await ctx.stack.init_keyspace(settings))
        reader = CassandraReader(settings)
    else:
        reader = StoreReader(settings.store_path)
    return Scenario(name, settings, env, reader)


def stop_worker(ctx: Context, worker: WorkerProcess) -> None:
    if not worker.stop(ctx.args.stop_timeout):
        ctx.unclean_stops.append(worker.log_path.name)
        print(
            f"  (worker {worker.log_path.stem} did not exit within {ctx.args.stop_timeout:g}s of SIGINT; killed)",
            file=sys.stderr,
            flush=True,
        )


def start_worker(ctx: Context, scenario: Scenario, label: str, *, profile_path: Path | None = None) -> WorkerProcess:
    worker = WorkerProcess(scenario.env, ctx.root / f"{scenario.name}-{label}.log", profile_path=profile_path)
    ctx.workers.append(worker)
    worker.spawn()
    return worker


async def publish_chunked(publisher: EventPublisher, envelopes: list[Envelope], chunk: int) -> float:
    """Publish all; returns the rate (acknowledged envelopes/s)."""
    start = time.perf_counter()
    for i in range(0, len(envelopes), chunk):
        await publisher.publish_many(envelopes[i : i + chunk])
    return len(envelopes) / (time.perf_counter() - start)


def user_pairs(rng: random.Random, users: int) -> list[tuple[str, str]]:
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(users)]
    return [(ids[i], ids[i + 1]) for i in range(0, users - 1, 2)]


def one_to_one_envelopes(rng: random.Random, pairs: list[tuple[str, str]], n: int) -> list[Envelope]:
    out = []
    for _ in range(n):
        a, b = rng.choice(pairs)
        out.append(make_envelope(a, b) if rng.random() < 0.5 else make_envelope(b, a))
    return out


def group_message(sender: str, group_id: str) -> Envelope:
    event = PersonalChatSent(
        message_id=str(uuid.uuid4()),
        sender_id=sender,
        target_id=group_id,
        payload=TEXT,
        target_type="group",
        conversation_id=group_id,
        client_msg_id=str(uuid.uuid4()),
    )
    return new_envelope(event, user_id=sender, client_id=str(uuid.uuid4()), session_id=str(uuid.uuid4()))


def percentile(ordered: list[float], q: float) -> float:
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after}


def proc_cpu(pid: int | None) -> float | None:
    return None if pid is None else cpu_seconds(Path(f"/proc/{pid}/stat"))


def engines_cpu(ctx: Context) -> dict[str, float | None]:
    """CPU seconds so far of the broker (Tansu or the Kafka JVM) and of Cassandra's JVM."""
    return {"broker": proc_cpu(ctx.broker_pid), "cassandra": proc_cpu(ctx.cassandra_pid)}


def engine_share(
    before: dict[str, float | None], after: dict[str, float | None], name: str, window: float
) -> float | None:
    start, end = before.get(name), after.get(name)
    return None if start is None or end is None or window <= 0 else (end - start) / window


async def timed_backlog(
    ctx: Context, scenario: Scenario, worker: WorkerProcess, expected_rows: int, spy_out: Path | None = None
) -> dict[str, Any]:
    """Wait for ready, then for ``expected_rows`` inbox rows; timings and CPU of the window."""
    args = ctx.args
    ready = await worker.wait_ready(args.ready_timeout)
    spy = None
    if spy_out is not None:
        assert worker.proc is not None
        spy = PySpy(worker.proc.pid, spy_out, args.py_spy_rate)
        ctx.spies.append(spy)
    cpu0, engines0 = worker.cpu(), engines_cpu(ctx)
    wait = await wait_for_count(
        scenario.reader.inbox_count,
        expected_rows,
        timeout_s=args.timeout,
        poll_s=args.poll_ms / 1000,
        worker=worker,
    )
    cpu1, engines1 = worker.cpu(), engines_cpu(ctx)
    if spy is not None:
        spy.stop()
    created = sorted(await settled(scenario.reader.inbox_created_ms, expected_rows))
    first_s, last_s = created[0] / 1000, created[-1] / 1000
    duration = last_s - ready
    p10, p90 = percentile([float(c) for c in created], 10), percentile([float(c) for c in created], 90)
    steady = 0.8 * len(created) / ((p90 - p10) / 1000) if p90 > p10 else float("nan")
    window = wait.done_at - ready
    cpu = cpu_delta(cpu0, cpu1)
    return {
        "startup_s": ready - worker.started,
        "first_row_after_ready_s": first_s - ready,
        "duration_s": duration,
        "inbox_rows": len(created),
        "inbox_rows_per_s": len(created) / duration,
        "steady_inbox_rows_per_s": steady,
        "poll_window_s": window,
        "polls": wait.polls,
        "poll_cpu_s": wait.poll_cpu_s,
        "worker_cpu_s": cpu,
        "worker_cpu_share": {k: v / window for k, v in cpu.items()},
        "broker_cpu_share": engine_share(engines0, engines1, "broker", window),
        "cassandra_cpu_share": engine_share(engines0, engines1, "cassandra", window),
    }


async def run_one_to_one(ctx: Context, name: str, messages: int, *, profile: str | None = None) -> dict[str, Any]:
    args = ctx.args
    scenario = await new_scenario(ctx, name)
    settings = scenario.settings
    await ensure_topics(settings, ctx.target)
    rng = random.Random(args.seed)
    pairs = user_pairs(rng, args.users)
    envelopes = one_to_one_envelopes(rng, pairs, messages)
    async with EventPublisher(settings, ctx.target, build_codec(settings)) as publisher:
        publish_rate = await publish_chunked(publisher, envelopes, args.chunk)
    del envelopes
    profile_path = ctx.root / f"{name}.prof" if profile == "cprofile" else None
    spy_out = ctx.root / f"{name}.pyspy.txt" if profile == "py-spy" else None
    worker = start_worker(ctx, scenario, "worker", profile_path=profile_path)
    try:
        result = await timed_backlog(ctx, scenario, worker, 2 * messages, spy_out=spy_out)
        if profile_path is not None:
            await worker.write_profile()
        result["messages"] = messages
        result["messages_per_s"] = messages / result["duration_s"]
        result["steady_messages_per_s"] = result["steady_inbox_rows_per_s"] / 2
        result["prepublish_per_s"] = publish_rate
        result["stored_messages"] = scenario.reader.messages_count()
        result["conversations"] = len(pairs)
    finally:
        stop_worker(ctx, worker)
        scenario.reader.close()
    result["clean_stop"] = worker.clean_stop
    if profile_path is not None:
        result["profile"] = cprofile_summary(profile_path, args.top)
        if args.profile_out:
            shutil.copy(profile_path, args.profile_out)
    if spy_out is not None:
        result["profile"] = py_spy_summary(spy_out, args.top)
        if args.profile_out:
            shutil.copy(spy_out, args.profile_out)
    return result


async def edge_topic_records(settings: Settings, topic: str, expected: int, timeout_s: float = 30.0) -> int:
    """Deliveries in ``topic`` (a ``messageDispatchedBatch`` counts one per recipient), read from
    the beginning until ``expected`` plus one empty poll, no new records for 3 s, or
    ``timeout_s`` (end offsets are not record counts on Tansu)."""
    codec = build_codec(settings)

    def deliveries(record: Any) -> int:
        event = codec.decode(record.value).payload
        return len(event.recipient_ids) if isinstance(event, MessageDispatchedBatch) else 1

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        isolation_level="read_committed",  # with transactional workers: only committed deliveries
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return 0
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        count, deadline, last_new = 0, time.monotonic() + timeout_s, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last_new < 3.0:
            fetched = (await consumer.getmany(timeout_ms=300)).values()
            batch = sum(deliveries(record) for records in fetched for record in records)
            if batch:
                count, last_new = count + batch, time.monotonic()
            elif count >= expected:
                break
        return count
    finally:
        await consumer.stop()


async def run_group(ctx: Context) -> dict[str, Any]:
    args = ctx.args
    scenario = await new_scenario(ctx, "group", CHAT_EDGE_HEARTBEAT_TIMEOUT_MS=str(EDGE_TIMEOUT_MS))
    settings = scenario.settings
    catalog = TopicCatalog(settings)
    edge_id = f"bench-edge-{ctx.run_id}"
    await ensure_topics(settings, ctx.target)
    await ensure_topics(settings, ctx.target, [catalog.edge_topic(edge_id)])
    rng = random.Random(args.seed + 1)
    members = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(args.group_size)]
    group_id = f"group-{ctx.run_id}"
    setup = [
        new_envelope(GroupCreated(group_id=group_id, name="bench", owner_id=members[0], member_ids=tuple(members[1:])))
    ]
    setup += [new_envelope(UserConnected(edge_id=edge_id), user_id=m, session_id=str(uuid.uuid4())) for m in members]
    senders = members[: args.group_senders]
    messages = [group_message(senders[i % len(senders)], group_id) for i in range(args.group_messages)]
    expected = args.group_size * args.group_messages
    async with EventPublisher(settings, ctx.target, build_codec(settings)) as publisher:
        setup_worker = start_worker(ctx, scenario, "setup")
        try:
            await setup_worker.wait_ready(args.ready_timeout)
            await publisher.publish_many(setup)
            reader = scenario.reader
            for count_of in (lambda: reader.active_members(group_id), lambda: reader.active_sessions(edge_id)):
                await wait_for_count(count_of, args.group_size, timeout_s=60, poll_s=0.05, worker=setup_worker)
        finally:
            stop_worker(ctx, setup_worker)
        publish_rate = await publish_chunked(publisher, messages, args.chunk)
    worker = start_worker(ctx, scenario, "worker")
    try:
        result = await timed_backlog(ctx, scenario, worker, expected)
        result["edge_records"] = await edge_topic_records(settings, catalog.edge_topic(edge_id).name, expected)
        result["sessions_still_active"] = scenario.reader.active_sessions(edge_id)
    finally:
        stop_worker(ctx, worker)
        scenario.reader.close()
    result.update(
        group_size=args.group_size,
        group_messages=args.group_messages,
        senders=len(senders),
        prepublish_per_s=publish_rate,
        deliveries_per_s=result["inbox_rows_per_s"],
        steady_deliveries_per_s=result["steady_inbox_rows_per_s"],
        group_messages_per_s=args.group_messages / result["duration_s"],
    )
    return result


async def run_latency(ctx: Context) -> dict[str, Any]:
    args = ctx.args
    scenario = await new_scenario(ctx, "latency")
    settings = scenario.settings
    await ensure_topics(settings, ctx.target)
    rng = random.Random(args.seed + 2)
    pairs = user_pairs(rng, args.users)
    count = int(args.latency_rate * args.latency_seconds)
    warm = 50
    worker = start_worker(ctx, scenario, "worker")
    try:
        await worker.wait_ready(args.ready_timeout)
        async with EventPublisher(settings, ctx.target, build_codec(settings)) as publisher:
            await publisher.publish_many(one_to_one_envelopes(rng, pairs, warm))
            await wait_for_count(scenario.reader.inbox_count, 2 * warm, timeout_s=60, poll_s=0.05, worker=worker)
            idle0, idle_engines0, idle_t0 = worker.cpu(), engines_cpu(ctx), time.perf_counter()
            await asyncio.sleep(1.0)  # idle again
            cpu0, engines0, t0 = worker.cpu(), engines_cpu(ctx), time.perf_counter()
            idle = cpu_shares(ctx, idle0, cpu0, idle_engines0, engines0, t0 - idle_t0)
            sent: dict[str, tuple[str, float]] = {}
            ack_ms: list[float] = []

            async def send(envelope: Envelope) -> None:
                start = time.perf_counter()
                await publisher.publish(envelope)
                ack_ms.append((time.perf_counter() - start) * 1000)

            tasks = []
            start = time.perf_counter()
            for i in range(count):
                delay = start + i / args.latency_rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                a, b = rng.choice(pairs)
                sender, recipient = (a, b) if rng.random() < 0.5 else (b, a)
                envelope = make_envelope(sender, recipient)
                payload = envelope.payload
                assert isinstance(payload, PersonalChatSent)
                sent[payload.message_id] = (recipient, time.time() * 1000)
                tasks.append(asyncio.ensure_future(send(envelope)))
            await asyncio.gather(*tasks)
            offered = count / (time.perf_counter() - start)
        expected = 2 * (warm + count)
        await wait_for_count(scenario.reader.inbox_count, expected, timeout_s=args.timeout, poll_s=0.1, worker=worker)
        cpu1, engines1 = worker.cpu(), engines_cpu(ctx)
        loaded = cpu_shares(ctx, cpu0, cpu1, engines0, engines1, time.perf_counter() - t0)
        cpu = cpu_delta(cpu0, cpu1)
        created = await settled(scenario.reader.inbox_rows, expected)
    finally:
        stop_worker(ctx, worker)
        scenario.reader.close()
    samples = sorted(created[(recipient, mid)] - sent_ms for mid, (recipient, sent_ms) in sent.items())
    acks = sorted(ack_ms)
    return {
        "rate": args.latency_rate,
        "seconds": args.latency_seconds,
        "offered_per_s": offered,
        "n": len(samples),
        "p50_ms": percentile(samples, 50),
        "p90_ms": percentile(samples, 90),
        "p99_ms": percentile(samples, 99),
        "max_ms": samples[-1],
        "mean_ms": statistics.fmean(samples),
        "publish_ack_p50_ms": percentile(acks, 50),
        "publish_ack_p99_ms": percentile(acks, 99),
        "worker_cpu_s": cpu,
        "cpu_share": loaded,
        "idle_cpu_share": idle,
    }


def cpu_shares(
    ctx: Context,
    worker0: dict[str, float],
    worker1: dict[str, float],
    engines0: dict[str, float | None],
    engines1: dict[str, float | None],
    window: float,
) -> dict[str, Any]:
    """Share of one core over ``window`` seconds: the worker's threads, the broker, Cassandra."""
    worker = cpu_delta(worker0, worker1)
    return {
        "window_s": window,
        "worker_cpu_share": {k: v / window for k, v in worker.items()} if window > 0 else {},
        "broker_cpu_share": engine_share(engines0, engines1, "broker", window),
        "cassandra_cpu_share": engine_share(engines0, engines1, "cassandra", window),
    }


# --- profiles -------------------------------------------------------------------------------

CATEGORIES = (
    ("chat_events/codec/", "Avro codec (chat_events.codec + fastavro)"),
    ("fastavro/", "Avro codec (chat_events.codec + fastavro)"),
    ("chat_events/events/", "envelopes & validation (chat_events.events)"),
    ("chat_events/streams/", "stage logic (chat_events.streams)"),
    ("chat_events/store/", "store (chat_events.store, SQLite calls)"),
    ("sqlite3", "store (chat_events.store, SQLite calls)"),
    ("chat_events/producers/", "publisher & partitioner (chat_events.producers)"),
    ("chat_events/", "other chat_events"),
    ("aiokafka/", "aiokafka (fetch, record parsing, send)"),
    ("kafka/", "aiokafka (fetch, record parsing, send)"),
    ("faust/", "Faust / mode (streams, acks, commits)"),
    ("mode/", "Faust / mode (streams, acks, commits)"),
    ("asyncio/", "asyncio event loop & futures"),
    ("selectors.py", "asyncio event loop & futures"),
    ("uuid.py", "uuid / datetime (ids, timestamps)"),
    ("datetime", "uuid / datetime (ids, timestamps)"),
    ("concurrent/futures", "thread hand-off (executor futures)"),
    ("threading.py", "thread hand-off (executor futures)"),
)
IDLE = "idle: waiting in epoll (broker, store thread, consumer thread, timers)"


def categorise(filename: str, name: str = "") -> str | None:
    """Category of a function by its file; None for a builtin (attributed to its callers)."""
    if "epoll" in name and "poll" in name:
        return IDLE
    if filename == "~":
        return None
    path = filename.replace("\\", "/")
    for marker, category in CATEGORIES:
        if marker in path:
            return category
    return "other Python (stdlib, pydantic, ...)"


def short_function(filename: str, line: int, name: str) -> str:
    if filename == "~":
        return name.replace("<built-in method ", "<").replace("<method ", "<")
    path = filename.replace("\\", "/")
    for root in ("site-packages/", "/lib/python3", str(REPO_ROOT) + "/"):
        if root in path:
            path = path.split(root, 1)[1]
            break
    if path.startswith(".") or path[:2].isdigit():  # /lib/python3.11/asyncio/... -> asyncio/...
        path = path.split("/", 1)[-1]
    return f"{path}:{line}({name})"


StatsDict = dict[tuple[str, int, str], tuple[int, int, float, float, dict[Any, Any]]]
GENERIC = frozenset({"_run_once", "run_forever", "run_until_complete", "_run", "run", "<module>", "_run_code"})


def cprofile_summary(path: Path, top: int) -> dict[str, Any]:
    """Own time per area (a builtin's own time is charged to its callers' areas, by their share
    of its time), and the top functions by own and by cumulative time."""
    stats: StatsDict = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    areas: dict[str, float] = defaultdict(float)
    for (filename, _, name), (_, _, tt, _, callers) in stats.items():
        area = categorise(filename, name)
        if area is not None:
            areas[area] += tt
            continue
        charged = 0.0
        for (cfile, _, cname), caller_stats in callers.items():
            share = float(caller_stats[2]) if isinstance(caller_stats, tuple) else 0.0
            areas[categorise(cfile, cname) or "builtins"] += share
            charged += share
        if tt > charged:
            areas["builtins"] += tt - charged
    total = sum(v[2] for v in stats.values())
    idle = areas.pop(IDLE, 0.0)

    def row(key: tuple[str, int, str]) -> dict[str, Any]:
        _, calls, tt, ct, _ = stats[key]
        return {"function": short_function(*key), "calls": calls, "own_s": tt, "cum_s": ct}

    by_own = sorted(stats, key=lambda k: stats[k][2], reverse=True)
    by_cum = sorted(stats, key=lambda k: stats[k][3], reverse=True)
    cumulative = [k for k in by_cum if not k[2].startswith("<") and k[2] not in GENERIC]
    return {
        "tool": "cProfile, event-loop thread, wall clock, from ready to the last row",
        "total_s": total,
        "idle_s": idle,
        "busy_s": total - idle,
        "areas": dict(sorted(areas.items(), key=lambda kv: kv[1], reverse=True)),
        "top_own": [row(k) for k in by_own[:top]],
        "top_cumulative": [row(k) for k in cumulative[:top]],
    }


def parse_frame(frame: str) -> tuple[str, str]:
    """``func (file)`` -> (func, file)."""
    name, _, rest = frame.rpartition(" (")
    return (name or frame), rest.rstrip(")")


PY_SPY_IDLE = (
    ("selectors.py", "select"),  # the event loops waiting in epoll
    ("concurrent/futures/thread.py", "_worker"),  # the store thread waiting for work (SimpleQueue.get)
    ("threading.py", "wait"),
)
PY_SPY_FRAMEWORK = (
    "asyncio/runners.py",
    "asyncio/base_events.py",
    "asyncio/events.py",
    "runpy",
    "chat_events/cli/",
    "threading.py",
    "mode/threads.py",
    "concurrent/futures/thread.py",
    "selectors.py",
)


def py_spy_summary(path: Path, top: int) -> dict[str, Any]:
    """Per thread: samples, idle samples (py-spy's own idle detection misses epoll and queue
    waits here, so they are recognised by frame), busy samples by area; top functions."""
    own: dict[str, int] = defaultdict(int)
    cumulative: dict[str, int] = defaultdict(int)
    areas: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    threads: dict[str, dict[str, int]] = defaultdict(lambda: {"samples": 0, "idle": 0})
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count, frames = int(count_text), stack.split(";")
        name = frames[0].split(": ", 1)[-1]
        kind = "event loop" if name == "MainThread" else "store thread" if "store" in name else "consumer thread"
        calls = [parse_frame(f) for f in frames[1:]]
        threads[kind]["samples"] += count
        if not calls:
            continue
        func, filename = calls[-1]
        if any(marker in filename and func.endswith(fn) for marker, fn in PY_SPY_IDLE):
            threads[kind]["idle"] += count
            continue
        areas[categorise(filename, func) or "builtins"][kind] += count
        own[short_function(filename, 0, func).replace(":0(", "(")] += count
        for func_name, file_name in calls:
            if not any(marker in file_name for marker in PY_SPY_FRAMEWORK):
                cumulative[short_function(file_name, 0, func_name).replace(":0(", "(")] += count
    busy = sum(t["samples"] - t["idle"] for t in threads.values())
    return {
        "tool": "py-spy, every thread, sampled (wall clock; idle = waiting in epoll or for work)",
        "busy_samples": busy,
        "threads": {k: dict(v) for k, v in threads.items()},
        "areas": {k: dict(v) for k, v in sorted(areas.items(), key=lambda kv: sum(kv[1].values()), reverse=True)},
        "top_own": [{"function": k, "samples": v} for k, v in sorted(own.items(), key=lambda kv: -kv[1])[:top]],
        "top_cumulative": [
            {"function": k, "samples": v} for k, v in sorted(cumulative.items(), key=lambda kv: -kv[1])[:top]
        ],
    }


# --- the run --------------------------------------------------------------------------------


async def measure(ctx: Context) -> dict[str, Any]:
    args = ctx.args
    results: dict[str, Any] = {}
    log = sys.stderr
    warmup = warmup_messages(args, ctx.stack)
    if warmup:  # JVMs compile their hot paths in their first minute: that is not what is measured
        print(f"warm-up (not measured): {warmup:,} 1:1 messages ...", file=log, flush=True)
        r = await run_one_to_one(ctx, "warm-up", warmup)
        print(f"  {r['messages_per_s']:,.0f} messages/s during the warm-up", file=log, flush=True)
        results["warmup_messages"] = warmup
    print(f"1:1 throughput: {args.messages:,} messages ...", file=log, flush=True)
    results["one_to_one"] = r = await run_one_to_one(ctx, "one-to-one", args.messages)
    print(f"  {r['messages_per_s']:,.0f} messages/s, {r['inbox_rows_per_s']:,.0f} inbox rows/s", file=log, flush=True)
    if args.group_messages:
        print(f"group: {args.group_messages:,} messages x {args.group_size} members ...", file=log, flush=True)
        results["group"] = r = await run_group(ctx)
        print(f"  {r['deliveries_per_s']:,.0f} deliveries/s", file=log, flush=True)
    if args.latency_seconds > 0:
        print(f"latency: {args.latency_rate:g} msg/s for {args.latency_seconds:g} s ...", file=log, flush=True)
        results["latency"] = r = await run_latency(ctx)
        print(f"  p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms", file=log, flush=True)
    if args.profiler != "none":
        print(f"profile ({args.profiler}): 1:1, {args.profile_messages:,} messages ...", file=log, flush=True)
        results["profiled"] = r = await run_one_to_one(ctx, "profiled", args.profile_messages, profile=args.profiler)
        print(f"  {r['messages_per_s']:,.0f} messages/s under the profiler", file=log, flush=True)
    return results


def environment(ctx: Context) -> dict[str, Any]:
    defaults = settings_of(scenario_env(ctx, "environment", ctx.root))
    transactions = "on" if ctx.target.transactions(defaults) else "off"
    if ctx.target.embedded:
        transactions += " (embedded broker: no transactions)"
    elif defaults.kafka_transactions == "auto":
        transactions += " (CHAT_KAFKA_TRANSACTIONS=auto)"
    return {
        "stack": ctx.stack.name,
        "stack_start_s": ctx.stack.start_s,
        "transactions": transactions,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "aiokafka": aiokafka.__version__,
        "broker": ctx.stack.broker_label,
        "store": ctx.stack.store_label,
        "partitions": defaults.topic_partitions,
        "worker_batch_max": defaults.worker_batch_max,
        "fetch_max_wait_ms": fetch_wait_ms(defaults, ctx.stack.target),
    }


def fmt_cpu(r: dict[str, Any]) -> str:
    share = r["worker_cpu_share"]
    parts = [
        f"worker event loop {share.get('main', float('nan')):.0%}",
        f"store+other threads {share.get('other', 0):.0%}",
    ]
    if r.get("broker_cpu_share") is not None:
        parts.append(f"broker {r['broker_cpu_share']:.0%}")
    if r.get("cassandra_cpu_share") is not None:
        parts.append(f"cassandra {r['cassandra_cpu_share']:.0%}")
    if "poll_cpu_s" in r:
        parts.append(f"poller {r['poll_cpu_s'] / r['poll_window_s']:.0%}")
    return "CPU (of one core): " + ", ".join(parts)


def format_profile(p: dict[str, Any]) -> list[str]:
    lines = [f"where the time goes: {p['tool']}"]
    if "total_s" in p:
        total, busy = p["total_s"], p["busy_s"]
        lines.append(
            f"  {total:.1f} s profiled: idle in epoll {p['idle_s']:.1f} s ({p['idle_s'] / total:.0%}), "
            f"busy {busy:.1f} s; own time by area (builtins charged to their callers), share of busy:"
        )
        for name, seconds in p["areas"].items():
            lines.append(f"    {name[:60]:<60}{seconds:>8.2f} s {seconds / busy:>6.1%}")
        header = f"    {'function':<82}{'calls':>10}{'own s':>8}{'cum s':>8}"
        lines += [f"  top {len(p['top_own'])} by own time:", header]
        for row in p["top_own"]:
            lines.append(f"    {row['function'][-82:]:<82}{row['calls']:>10,}{row['own_s']:>8.2f}{row['cum_s']:>8.2f}")
        lines += [f"  top {len(p['top_cumulative'])} by cumulative time:", header]
        for row in p["top_cumulative"]:
            lines.append(f"    {row['function'][-82:]:<82}{row['calls']:>10,}{row['own_s']:>8.2f}{row['cum_s']:>8.2f}")
        return lines
    busy = p["busy_samples"]
    kinds = [k for k in ("event loop", "consumer thread", "store thread") if k in p["threads"]]
    lines.append(
        "  busy share of each thread's samples: "
        + ", ".join(f"{k} {1 - t['idle'] / t['samples']:.0%}" for k, t in p["threads"].items() if t["samples"])
    )
    lines.append(f"  busy samples by area and thread, share of all {busy:,} busy samples:")
    lines.append(f"    {'area':<52}" + "".join(f"{k:>17}" for k in kinds) + f"{'total':>8}")
    for name, by_kind in p["areas"].items():
        cells = "".join(f"{by_kind.get(k, 0) / busy:>17.1%}" for k in kinds)
        lines.append(f"    {name[:52]:<52}{cells}{sum(by_kind.values()) / busy:>8.1%}")
    lines.append(f"  top {len(p['top_own'])} by own busy samples:")
    for row in p["top_own"]:
        lines.append(f"    {row['function'][-90:]:<90}{row['samples'] / busy:>7.1%}")
    lines.append(f"  top {len(p['top_cumulative'])} by busy samples on the stack (loop and thread plumbing left out):")
    for row in p["top_cumulative"]:
        lines.append(f"    {row['function'][-90:]:<90}{row['samples'] / busy:>7.1%}")
    return lines


def pct(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def aim(value: float, target: float) -> str:
    return f"aim {target:,}: {'met' if value >= target else 'NOT met'} ({value / target:.2f} of it)"


def format_text(r: dict[str, Any]) -> str:
    env = r["environment"]
    load = env["load_average_at_start"]
    lines = [
        f"chat-events worker benchmark  {env['date']}  python {env['python']}  "
        f"aiokafka {env['aiokafka']}  cpus {env['cpus']}" + (f"  load {load[0]:.2f}" if load else ""),
        f"stack {env['stack']} (engines up in {env['stack_start_s']:.1f} s); transactions {env['transactions']}",
        f"broker: {env['broker']}; store: {env['store']}; {env['partitions']} partitions; "
        f"batches of up to {env['worker_batch_max']}; "
        f"fetch_max_wait_ms {env['fetch_max_wait_ms']}",
    ]
    if r.get("cassandra_schema_s"):
        times = r["cassandra_schema_s"]
        lines.append(f"Cassandra keyspaces created (untimed): {len(times)}, {statistics.fmean(times):.1f} s each")
    if env.get("worker_env"):
        lines.append(
            "worker settings changed for this run: " + " ".join(f"{k}={v}" for k, v in env["worker_env"].items())
        )
    lines.append("")
    o = r["one_to_one"]
    lines += [
        f"1:1 throughput: {o['messages']:,} messages in {o['conversations']} conversations, pre-published "
        f"({o['prepublish_per_s']:,.0f}/s), worker started {o['startup_s']:.1f} s before ready",
        f"  ready -> last inbox row {o['duration_s']:.2f} s: {o['messages_per_s']:,.0f} messages/s, "
        f"{o['inbox_rows_per_s']:,.0f} inbox writes/s  ({aim(o['messages_per_s'], ONE_TO_ONE_AIM)})",
        f"  steady state (10th-90th percentile row): {o['steady_messages_per_s']:,.0f} messages/s; "
        f"first row {o['first_row_after_ready_s'] * 1000:.0f} ms after ready",
        "  " + fmt_cpu(o),
    ]
    if "group" in r:
        g = r["group"]
        lines += [
            "",
            f"group deliveries: {g['group_messages']:,} messages from {g['senders']} senders to "
            f"{g['group_size']} members (all online on one edge), pre-published ({g['prepublish_per_s']:,.0f}/s)",
            f"  ready -> last inbox row {g['duration_s']:.2f} s: {g['deliveries_per_s']:,.0f} deliveries/s "
            f"({g['group_messages_per_s']:,.0f} group messages/s)  ({aim(g['deliveries_per_s'], GROUP_AIM)})",
            f"  steady state: {g['steady_deliveries_per_s']:,.0f} deliveries/s; edge topic "
            f"deliveries {g['edge_records']:,} (expected {g['inbox_rows']:,}); "
            f"sessions still active {g['sessions_still_active']}",
            "  " + fmt_cpu(g),
        ]
    if "latency" in r:
        lat = r["latency"]
        lines += [
            "",
            f"latency, publish -> recipient's inbox row: {lat['n']:,} messages offered at "
            f"{lat['offered_per_s']:,.0f}/s (open loop), worker otherwise idle",
            f"  p50 {lat['p50_ms']:.0f} ms  p90 {lat['p90_ms']:.0f} ms  p99 {lat['p99_ms']:.0f} ms  "
            f"max {lat['max_ms']:.0f} ms  mean {lat['mean_ms']:.1f} ms; publish() ack alone p50 "
            f"{lat['publish_ack_p50_ms']:.1f} ms p99 {lat['publish_ack_p99_ms']:.1f} ms",
            f"  while sending and draining: {fmt_cpu(lat['cpu_share'])}",
            f"  idle (worker ready and warmed up, no load, {lat['idle_cpu_share']['window_s']:.1f} s): "
            + fmt_cpu(lat["idle_cpu_share"]),
        ]
    if r.get("unclean_stops"):
        lines += [
            "",
            f"workers that did not exit within the grace after SIGINT, killed: {', '.join(r['unclean_stops'])}",
        ]
    if "profiled" in r:
        p = r["profiled"]
        lines += [
            "",
            f"profiled 1:1 run: {p['messages_per_s']:,.0f} messages/s under the profiler "
            f"({p['messages_per_s'] / o['messages_per_s']:.2f} of the unprofiled rate); " + fmt_cpu(p),
        ]
        lines += format_profile(p["profile"])
    return "\n".join(lines)


def format_markdown(r: dict[str, Any]) -> str:
    o = r["one_to_one"]
    lines = [
        "| scenario | ready → last row s | rate | steady rate | aim | met? |",
        "|---|---:|---:|---:|---:|---|",
        f"| 1:1, {o['messages']:,} messages | {o['duration_s']:.2f} | {o['messages_per_s']:,.0f} msg/s "
        f"({o['inbox_rows_per_s']:,.0f} inbox writes/s) | {o['steady_messages_per_s']:,.0f} msg/s "
        f"| {ONE_TO_ONE_AIM:,} msg/s | {'yes' if o['messages_per_s'] >= ONE_TO_ONE_AIM else '**no**'} |",
    ]
    if "group" in r:
        g = r["group"]
        lines.append(
            f"| group of {g['group_size']}, {g['group_messages']:,} messages | {g['duration_s']:.2f} "
            f"| {g['deliveries_per_s']:,.0f} deliveries/s | {g['steady_deliveries_per_s']:,.0f} deliveries/s "
            f"| {GROUP_AIM:,} deliveries/s | {'yes' if g['deliveries_per_s'] >= GROUP_AIM else '**no**'} |"
        )
    lines += [
        "",
        "| run | worker event loop | store + other threads | broker | cassandra |",
        "|---|---:|---:|---:|---:|",
    ]
    runs = [(r.get(k), label) for k, label in (("one_to_one", "1:1"), ("group", "group"), ("profiled", "1:1 profiled"))]
    if "latency" in r:
        runs += [(r["latency"]["cpu_share"], "latency run"), (r["latency"]["idle_cpu_share"], "idle (no load)")]
    for s, label in runs:
        if s is not None:
            lines.append(
                f"| {label} | {s['worker_cpu_share'].get('main', 0):.0%} | {s['worker_cpu_share'].get('other', 0):.0%} "
                f"| {pct(s.get('broker_cpu_share'))} | {pct(s.get('cassandra_cpu_share'))} |"
            )
    if "latency" in r:
        lat = r["latency"]
        lines += [
            "",
            "| latency (publish → recipient's inbox row) | n | p50 ms | p90 ms | p99 ms | max ms |",
            "|---|---:|---:|---:|---:|---:|",
            f"| {lat['offered_per_s']:,.0f} msg/s offered, 1:1 | {lat['n']:,} | {lat['p50_ms']:.0f} "
            f"| {lat['p90_ms']:.0f} | {lat['p99_ms']:.0f} | {lat['max_ms']:.0f} |",
        ]
    if "profiled" in r and "total_s" in r["profiled"]["profile"]:
        p = r["profiled"]["profile"]
        busy = p["busy_s"]
        lines += [
            "",
            f"| event-loop thread, own time by area (cProfile; idle {p['idle_s'] / p['total_s']:.0%} excluded) "
            "| s | share of busy |",
            "|---|---:|---:|",
        ]
        for name, seconds in p["areas"].items():
            lines.append(f"| {name} | {seconds:.2f} | {seconds / busy:.1%} |")
        lines += ["", "| function (top by own time) | calls | own s | cum s |", "|---|---:|---:|---:|"]
        for row in p["top_own"]:
            lines.append(f"| `{row['function']}` | {row['calls']:,} | {row['own_s']:.2f} | {row['cum_s']:.2f} |")
        lines += ["", "| function (top by cumulative time) | calls | own s | cum s |", "|---|---:|---:|---:|"]
        for row in p["top_cumulative"]:
            lines.append(f"| `{row['function']}` | {row['calls']:,} | {row['own_s']:.2f} | {row['cum_s']:.2f} |")
    return "\n".join(lines)


def profiled_worker(out: Path) -> int:
    """What ``--profiled-worker`` runs: ``run_worker`` (as ``chat-events worker`` does) with
    cProfile on the event-loop thread from "worker ready" on. SIGHUP (mode's worker owns SIGINT,
    SIGTERM and SIGUSR1/2) stops the profiler, writes ``out`` and prints "profile written"."""
    import cProfile

    from chat_events.streams.worker import run_worker

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    profiler = cProfile.Profile()

    def write_profile(signum: int, frame: Any) -> None:
        profiler.disable()
        profiler.dump_stats(str(out))
        print("profile written", flush=True)

    def ready(app: Any) -> None:
        profiler.enable()
        print("worker ready", flush=True)

    signal.signal(signal.SIGHUP, write_profile)
    asyncio.run(run_worker(Settings(), on_ready=ready))
    print("worker stopped", flush=True)
    return 0


@contextlib.contextmanager
def cleanup(ctx: Context) -> Iterator[None]:
    try:
        yield
    finally:
        for spy in ctx.spies:
            kill_group(spy.proc, signal.SIGKILL)
        for worker in ctx.workers:
            if worker.proc is not None and worker.proc.poll() is None:
                kill_group(worker.proc, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_worker", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000, help="1:1 messages (default 20000)")
    parser.add_argument("--users", type=int, default=200, help="1:1 users, in fixed pairs (default 200)")
    parser.add_argument("--group-messages", type=int, default=1_000, help="group messages (default 1000; 0 = skip)")
    parser.add_argument("--group-size", type=int, default=100)
    parser.add_argument("--group-senders", type=int, default=4)
    parser.add_argument("--latency-rate", type=float, default=200.0, help="offered 1:1 messages/s")
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="0 = skip the latency run")
    parser.add_argument("--profiler", choices=("cprofile", "py-spy", "none"), default="cprofile")
    parser.add_argument(
        "--profile-messages", type=int, default=8_000, help="1:1 messages of the profiled run (default 8000)"
    )
    parser.add_argument("--py-spy-rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=15, help="functions listed per profile table")
    parser.add_argument("--profile-out", type=Path, metavar="PATH", help="also keep the raw profile at PATH")
    parser.add_argument("--chunk", type=int, default=1_000, help="envelopes per publish_many")
    parser.add_argument("--poll-ms", type=float, default=100.0, help="store polling interval")
    parser.add_argument("--timeout", type=float, default=300.0, help="longest wait for one scenario's rows")
    parser.add_argument("--ready-timeout", type=float, default=90.0)
    parser.add_argument("--stop-timeout", type=float, default=5.0, help="SIGINT -> SIGKILL grace per worker")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="CHAT_X=VALUE",
        help="extra setting for every worker (experiments; repeatable); the defaults are measured without",
    )
    parser.add_argument("--workdir", type=Path, help="keep data dirs, worker logs and profiles here")
    add_stack_argument(parser)
    parser.add_argument(
        "--transactions",
        choices=("on", "off", "both"),
        help="CHAT_KAFKA_TRANSACTIONS of the workers on real Kafka; both = each real-Kafka stack twice, "
        "on then off (default: the product's auto, i.e. on for real Kafka)",
    )
    parser.add_argument(
        "--engines",
        default="native,faust",
        help="CHAT_WORKER_ENGINE values to run every stack with, in turn (default native,faust: each "
        "scenario on both engines, then the faust/native ratios); 'native' alone = the default engine only",
    )
    parser.add_argument(
        "--warmup-messages",
        type=int,
        help="unmeasured 1:1 messages before each stack's scenarios (default 8,000 on real Kafka/Cassandra, "
        "0 on embedded: the JVMs' JIT warm-up is not measured)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--markdown", action="store_true", help="also print Markdown tables")
    parser.add_argument("--profiled-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.profiled_worker:
        return profiled_worker(args.profiled_worker)
    if (
        min(args.messages, args.profile_messages, args.group_size, args.group_senders, args.chunk, args.top) < 1
        or args.users < 2
    ):
        parser.error("counts must be positive (and --users at least 2)")
    if args.group_senders > args.group_size or args.group_size < 2:
        parser.error("--group-size must be at least 2 and at least --group-senders")
    if args.profiler == "py-spy" and not py_spy_available():
        parser.error("py-spy is not installed: pip install py-spy (or --profiler cprofile)")
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # clean up on kill too
    worker_env = dict(item.split("=", 1) for item in args.worker_env)
    if not all(key.startswith("CHAT_") for key in worker_env):
        parser.error("--worker-env takes CHAT_NAME=VALUE")
    stacks = stacks_to_run(args.stack)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if not engines or not set(engines) <= {"native", "faust"}:
        parser.error("--engines takes native, faust or native,faust")
    if args.transactions and not external_kafka() and stacks == ["embedded"]:
        parser.error("--transactions needs real Kafka: --stack kafka, kafka-cassandra or all (Tansu has none)")
    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    with contextlib.ExitStack() as exits:
        if args.workdir:
            args.workdir.mkdir(parents=True, exist_ok=True)
            root = Path(tempfile.mkdtemp(prefix="bench-worker-", dir=args.workdir))
        else:
            root = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="bench-worker-")))
        print(f"work dir {root}", file=sys.stderr, flush=True)
        for name in stacks:
            try:
                with started_stack(name, root / name) as stack:
                    for transactions in transaction_variants(args.transactions, stack):
                        for engine in engines:
                            label = engine if len(engines) > 1 else None
                            runs.append(run_on(stack, transactions, root, args, worker_env, engine=label))
            except Exception as exc:  # one stack failing does not lose the others' figures
                if len(stacks) == 1:
                    raise
                print(f"stack {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                runs.append({"benchmark": "worker", "stack": name, "error": f"{type(exc).__name__}: {exc}"})
    if len(runs) == 1:
        result = runs[0]
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
        emit(result, format_text, format_markdown, markdown=args.markdown, json_path=args.json)
        return 0
    combined: dict[str, Any] = {"benchmark": "worker", "stack": args.stack, "runs": runs}
    combined["wall_seconds"] = round(time.perf_counter() - started, 1)
    emit(combined, format_runs_text, format_runs_markdown, markdown=args.markdown, json_path=args.json)
    return 1 if any("error" in run for run in runs) else 0


def warmup_messages(args: argparse.Namespace, stack: Stack) -> int:
    """1:1 messages run, unmeasured, before a stack's first scenarios: ``--warmup-messages``, by
    default 8,000 where a JVM runs (real Kafka or Cassandra; their JIT compilers take most of
    a core for the first ~30 s, measured with JFR) and none on the embedded stack."""
    if args.warmup_messages is not None:
        return int(args.warmup_messages)
    return 8000 if stack.name != "embedded" else 0


def transaction_variants(choice: str | None, stack: Stack) -> list[str | None]:
    """``CHAT_KAFKA_TRANSACTIONS`` values to run ``stack`` with (None = the product default)."""
    if stack.target.embedded or choice is None:
        return [None]
    return ["on", "off"] if choice == "both" else [choice]


def run_on(
    stack: Stack,
    transactions: str | None,
    root: Path,
    args: argparse.Namespace,
    worker_env: dict[str, str],
    *,
    engine: str | None = None,
) -> dict[str, Any]:
    """Every scenario once on ``stack``: one result, as a single-stack run reports it."""
    started = time.perf_counter()
    run_root = root / stack.name / (f"transactions-{transactions}" if transactions else "run") / (engine or "default")
    run_root.mkdir(parents=True)
    ctx = Context(stack, run_root, uuid.uuid4().hex[:8], args, transactions, engine, worker_env=worker_env)
    print(f"== {ctx.label}: broker {ctx.target.bootstrap_servers}, work dir {run_root}", file=sys.stderr, flush=True)
    env = environment(ctx)
    with cleanup(ctx):
        results = asyncio.run(measure(ctx))
    env["worker_env"] = worker_env
    env["engine"] = engine or "native"
    result: dict[str, Any] = {"benchmark": "worker", "label": ctx.label, "environment": env, **results}
    result["cassandra_schema_s"] = ctx.schema_s
    result["unclean_stops"] = ctx.unclean_stops
    result["aims"] = {"one_to_one_messages_per_s": ONE_TO_ONE_AIM, "group_deliveries_per_s": GROUP_AIM}
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    return result


# --- several stacks: one comparison -----------------------------------------------------------


def run_figures(r: dict[str, Any]) -> dict[str, str]:
    """The figures of one run that the comparison table shows, by row label."""
    env = r["environment"]
    out = {"engines up, s": f"{env['stack_start_s']:.1f}", "transactions": env["transactions"].split(" (")[0]}
    o = r["one_to_one"]
    out["1:1 msg/s, ready -> last row"] = f"{o['messages_per_s']:,.0f}"
    out["1:1 msg/s, steady"] = f"{o['steady_messages_per_s']:,.0f}"
    cpu: list[tuple[str, dict[str, Any]]] = [("1:1", o)]
    if "group" in r:
        g = r["group"]
        out["group deliveries/s, ready -> last row"] = f"{g['deliveries_per_s']:,.0f}"
        out["group deliveries/s, steady"] = f"{g['steady_deliveries_per_s']:,.0f}"
        cpu.append(("group", g))
    if "latency" in r:
        lat = r["latency"]
        rate = f"{lat['rate']:g} msg/s"
        out[f"latency at {rate}, p50 / p99 ms"] = f"{lat['p50_ms']:.0f} / {lat['p99_ms']:.0f}"
        out[f"publish() ack at {rate}, p50 / p99 ms"] = (
            f"{lat['publish_ack_p50_ms']:.1f} / {lat['publish_ack_p99_ms']:.1f}"
        )
        cpu += [("latency run", lat["cpu_share"]), ("idle, no load", lat["idle_cpu_share"])]
    for name, shares in cpu:
        worker = shares["worker_cpu_share"]
        out[f"CPU {name}: worker event loop"] = pct(worker.get("main"))
        out[f"CPU {name}: worker other threads"] = pct(worker.get("other"))
        out[f"CPU {name}: broker"] = pct(shares.get("broker_cpu_share"))
        out[f"CPU {name}: cassandra"] = pct(shares.get("cassandra_cpu_share"))
    return out


def run_labels(runs: list[dict[str, Any]]) -> list[str]:
    return [r.get("label") or r["stack"] for r in runs]


def format_runs_text(combined: dict[str, Any]) -> str:
    parts = []
    for label, run in zip(run_labels(combined["runs"]), combined["runs"], strict=True):
        body = f"failed: {run['error']}" if "error" in run else format_text(run)
        parts.append(f"===== {label} =====\n{body}")
    table = comparison_text(run_labels(combined["runs"]), comparison_rows(combined["runs"], run_figures))
    parts.append("comparison (CPU = share of one core; only ratios within one run mean anything):\n" + table)
    ratios = engine_ratios(combined["runs"])
    if ratios:
        lines = [f"  {label}: {name} {value}" for label, figures in ratios.items() for name, value in figures.items()]
        parts.append("faust/native (same stack, same run):\n" + "\n".join(lines))
    return "\n\n".join(parts)


def format_runs_markdown(combined: dict[str, Any]) -> str:
    parts = [
        f"#### {label}\n\n{format_markdown(run)}"
        for label, run in zip(run_labels(combined["runs"]), combined["runs"], strict=True)
        if "error" not in run
    ]
    parts.append(comparison_markdown(run_labels(combined["runs"]), comparison_rows(combined["runs"], run_figures)))
    ratios = engine_ratios(combined["runs"])
    if ratios:
        names = list(next(iter(ratios.values())))
        lines = ["| faust/native | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        lines += [f"| {label} | " + " | ".join(f.get(n, "") for n in names) + " |" for label, f in ratios.items()]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


RATIO_FIGURES: dict[str, tuple[str, ...]] = {
    "1:1 msg/s": ("one_to_one", "messages_per_s"),
    "1:1 msg/s steady": ("one_to_one", "steady_messages_per_s"),
    "group deliveries/s": ("group", "deliveries_per_s"),
    "group deliveries/s steady": ("group", "steady_deliveries_per_s"),
    "latency p50": ("latency", "p50_ms"),
    "latency p99": ("latency", "p99_ms"),
}


def engine_ratios(runs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """faust/native of each figure in :data:`RATIO_FIGURES`, per stack (and transactions
    variant) that ran on both engines (pure: for the printed and the Markdown summary)."""
    by_engine: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for run in runs:
        if "error" in run:
            continue
        label = run["label"].rsplit(", ", 1)[0]
        by_engine[label][run["environment"].get("engine", "native")] = run
    out: dict[str, dict[str, str]] = {}
    for label, pair in by_engine.items():
        if {"native", "faust"} <= set(pair):
            figures: dict[str, str] = {}
            for name, (scenario, key) in RATIO_FIGURES.items():
                native, faust = pair["native"].get(scenario, {}).get(key), pair["faust"].get(scenario, {}).get(key)
                if native and faust is not None:
                    figures[name] = f"{faust / native:.2f}"
            out[label] = figures
    return out


if __name__ == "__main__":
    raise SystemExit(main())
