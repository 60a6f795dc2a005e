"""End to end through one edge: 1:1 (W1) and group (W2) throughput and latency, idle connections.

Run from the repository root::

    python -m benchmarks.bench_edge [--markdown] [--quick] [--profile] [--json PATH]
                                    [--stack embedded|kafka|kafka-cassandra|all]

Everything runs on this machine at once: the broker and store of ``--stack`` (see
:mod:`benchmarks.stacks`; default ``embedded`` = the embedded broker, Tansu, memory only, or the
cluster in ``CHAT_KAFKA_BOOTSTRAP_SERVERS``, and the embedded SQLite store; ``kafka`` = real
Apache Kafka started for this run; ``kafka-cassandra`` = real Kafka and real Cassandra, a fresh
keyspace per system; ``all`` = each in turn, then one comparison table), one ``chat-events
worker`` process, one ``chat-events edge`` process (uvicorn on a free port) and the load
generator (this process, asyncio on uvloop,
:class:`chat_events.client.ChatClient` per user). Every scenario gets fresh processes, a fresh
data directory, topic prefix and worker consumer group. Settings of the benchmark processes:
send rate limit 1,000,000/s (burst 1,000,000), outbound queue 100,000 frames per socket (so a
socket is not closed for being slow during saturation), everything else at its default
(``fetch_max_wait_ms`` 10, 8 partitions, ...). Scenarios:

* **Priming**: before anything is measured, every sender sends 3 messages (each ACKed) and the
  benchmark waits until all are delivered. On a fresh system the first worker sends sometimes
  stall for the Kafka request timeout (10 s; see docs/benchmarks.md); that shows here, not in
  the figures.
* **W1, 1:1**: ``--w1-users`` (50) users in fixed pairs, each sending to its partner.
  *Saturation*, two ways on one fresh system: (1) delivery-gated: every user keeps ``--window``
  (16) messages in flight *until its partner received them*, for ``--gated-warmup`` +
  ``--gated-seconds`` (what the pipeline sustains, no backlog); then (2) ACK-gated: every user
  keeps ``--window`` sends outstanding, a new one as soon as one is ACKed (= acknowledged by
  Kafka), for ``--warmup`` + ``--seconds`` (what the edge accepts; the ACK does not wait for the
  worker, so a backlog grows). Deliveries to recipients (a delivery whose sender is the receiving
  user, the sender's own inbox copy, is not counted) and ACKs are counted in the window after
  the warm-up; CPU of the broker, worker, edge and this process (and of the whole machine) is
  sampled from ``/proc`` over the same window. *Latency*: open loop (message i sent at start +
  i / rate, never waiting for ACKs), round-robin over the users, at each of ``--w1-rates``
  (ascending, on one fresh system) for ``--latency-warmup`` + ``--latency-seconds``; latency =
  recipient's ``receive()`` - ``perf_counter_ns`` just before ``send()`` (stamped in the content).
  Every measured message must arrive within ``--drain-timeout``; missing and duplicate
  deliveries are counted. *Idle*: on the latency system, after priming and before the first
  rate, ``--idle-cpu-seconds`` with all ``--w1-users`` connected and nothing sent: the CPU of every
  process then (heartbeats, consumer long-polls, the engines' own housekeeping).
* **W2, group**: one ``--w2-members`` (50) member group (created over HTTP), every member
  connected, ``--w2-senders`` (4) of them sending. Saturation as W1 (a message counts once per
  recipient, 49 for 50 members; delivery-gated = all 49 have it); latency at each of
  ``--w2-rates`` group messages/s, per (message, recipient).
* **Idle connections**: ``--idle-connections`` (10,000) raw ``websockets`` connections (header
  sign-in, one user each, tokens minted locally with the edge's secret), opened ``--idle-batch``
  (200) at a time and kept open; once offering permessage-deflate (as ``ChatClient`` and
  browsers do; the edge declines it unless ``CHAT_WS_PER_MESSAGE_DEFLATE=true``, and the
  report says on how many sockets it was negotiated) and once without
  (``--idle-compression``), each on a fresh edge. Memory per
  connection = (edge VmRSS after - before) / N, after a small warm-up batch was opened and
  closed. The edge runs with ``CHAT_WS_HEARTBEAT_S=600`` here (an idle socket is closed after
  twice that without frames; the default 30 s would close the first sockets while the last ones
  are still signing in). RLIMIT_NOFILE is raised in this process before anything is spawned, so
  the edge inherits it.

``--profile``: right after the delivery-gated W1 window, ``py-spy record`` samples the edge and
the worker for ``--profile-seconds`` more under the same load (the measured window is not
profiled). ``--quick``: shorter windows, 1,000 idle connections, deflate only (about 2 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import httpx

from benchmarks.edge_load import (
    ClientPool,
    CpuSnapshot,
    PySpy,
    SendStats,
    Service,
    cpu_shares,
    free_port,
    latency_summary,
    log_problems,
    next_key,
    open_idle,
    paced,
    py_spy_binary,
    py_spy_summary,
    raise_nofile,
    rss_kib,
    saturate,
    saturate_delivered,
    send_one,
    snapshot,
    wait_deliveries,
    wait_http_ready,
    wait_log_line,
)
from benchmarks.report import comparison_markdown, comparison_rows, comparison_text, emit
from benchmarks.stacks import Stack, add_stack_argument, keyspace_name, stacks_to_run, started_stack
from chat_events.api.tokens import issue_token
from chat_events.client import ChatClient, HttpApi
from chat_events.client.models import TargetType
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.settings import Settings

W1_AIM = 5_000
"""First milestone: 1:1 messages/s delivered, one edge + one worker."""
W1_P99_AIM_MS = 50.0
W1_P99_AIM_AT = 1_000.0
"""... with p99 send→receive ≤ 50 ms at 1,000 msg/s offered."""
W2_AIM = 50_000
"""Group deliveries/s."""
IDLE_AIM = 10_000
IDLE_KIB_AIM = 40.0
"""≥ 10,000 idle connections per edge, under 40 KiB each."""
EJABBERD = {
    "archive on": {"w1": "≈ 470 msg/s (p99 7.5 ms at 200 msg/s offered)", "w2": "≈ 17,400 deliveries/s (p99 63 ms)"},
    "archive off": {"w1": "≈ 22,400 msg/s", "w2": "≈ 51,000 deliveries/s"},
}
"""The issue's reference figures: ejabberd on this machine."""

BENCH_ENV = {
    "CHAT_SEND_RATE_PER_S": "1000000",
    "CHAT_SEND_BURST": "1000000",
    "CHAT_WS_OUTBOUND_QUEUE": "100000",
    "CHAT_KAFKA_FETCH_MAX_WAIT_MS": "10",
}
PRIME_PER_ROUTE = 3
"""Messages per sender, sent and delivered before anything is measured."""
IDLE_WARMUP = 50
"""Connections opened and closed before the idle baseline (first-use allocations, imports)."""
PROCESSES = ("broker", "cassandra", "worker", "edge", "generator")
"""The processes whose CPU is sampled (``cassandra`` only on the Cassandra stack)."""


# --- the system under test ------------------------------------------------------------------


@dataclass(slots=True)
class Context:
    args: argparse.Namespace
    root: Path
    run_id: str
    stack: Stack
    services: list[Service] = field(default_factory=list)
    nofile: int = 0
    schema_s: list[float] = field(default_factory=list)
    """Seconds each Cassandra keyspace took to create (before its system starts, not measured)."""

    @property
    def target(self) -> KafkaTarget:
        return self.stack.target


@dataclass(slots=True)
class System:
    name: str
    settings: Settings
    worker: Service
    edge: Service
    port: int
    startup_s: dict[str, float]

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def secret(self) -> str:
        return self.settings.auth_secret.get_secret_value()

    def pids(self, ctx: Context) -> dict[str, int | None]:
        return {
            "broker": ctx.stack.broker_pid,
            "cassandra": ctx.stack.cassandra_pid,
            "worker": self.worker.pid,
            "edge": self.edge.pid,
            "generator": os.getpid(),
        }


async def start_system(ctx: Context, name: str, **extra_env: str) -> System:
    """Fresh data dir, topic prefix and consumer group; the topics; a worker and an edge, ready."""
    data_dir = ctx.root / name
    data_dir.mkdir(parents=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env.update(BENCH_ENV)
    env.update(ctx.stack.child_env(keyspace_name(ctx.run_id, name) if ctx.stack.cassandra else None))
    env.update(
        CHAT_DATA_DIR=str(data_dir),
        CHAT_TOPIC_PREFIX=f"benche{ctx.run_id}-{name}.",
        CHAT_WORKER_APP_ID=f"bench-edge-{ctx.run_id}-{name}",
        CHAT_EDGE_PORT=str(port),
        CHAT_EDGE_NAME=f"bench-{name}",
    )
    env.update(extra_env)
    values: dict[str, Any] = {k[len("CHAT_") :].lower(): v for k, v in env.items() if k.startswith("CHAT_")}
    settings = Settings(**values)
    if ctx.stack.cassandra:
        ctx.schema_s.append(await ctx.stack.init_keyspace(settings))
    await ensure_topics(settings, ctx.target)
    worker = Service("worker", "worker", env, ctx.root / f"{name}-worker.log")
    edge = Service("edge", "edge", env, ctx.root / f"{name}-edge.log")
    ctx.services += [worker, edge]
    worker.start()
    edge.start()
    timeout = ctx.args.ready_timeout
    worker_s, edge_s = await asyncio.gather(
        wait_log_line(worker, b"worker ready", timeout),
        wait_http_ready(edge, f"http://127.0.0.1:{port}/readyz", timeout),
    )
    return System(name, settings, worker, edge, port, {"worker_s": worker_s, "edge_s": edge_s})


def stop_system(system: System) -> dict[str, Any]:
    """Kill both (after the figures are taken) and report what their logs say went wrong."""
    alive = {"worker": system.worker.alive(), "edge": system.edge.alive()}
    system.edge.kill()
    system.worker.kill()
    return {
        "alive_at_end": alive,
        "edge_log": log_problems(system.edge.log_text()),
        "worker_log": log_problems(system.worker.log_text()),
    }


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def pair_routes(pool: ClientPool, users: list[str]) -> list[tuple[ChatClient, TargetType, str]]:
    return [(pool.clients[users[i]], "user", users[i ^ 1]) for i in range(len(users))]


def events_of(pool: ClientPool, stats: list[SendStats]) -> dict[str, Any]:
    errors: dict[str, int] = {}
    for s in stats:
        for name, n in s.errors.items():
            errors[name] = errors.get(name, 0) + n
    return {
        "send_errors": errors,
        "closed_connections": dict(pool.events.closed),
        "gaps": pool.events.gaps,
        "receive_errors": dict(pool.events.receive_errors),
        "unparsed": pool.recorder.unparsed,
    }


# --- saturation -----------------------------------------------------------------------------


async def measure_saturation(
    ctx: Context,
    system: System,
    pool: ClientPool,
    routes: list[tuple[ChatClient, TargetType, str]],
    *,
    gate: str,
    warmup: float,
    seconds: float,
    profile: bool,
) -> dict[str, Any]:
    """Drive ``routes`` closed-loop (``gate`` "ack": a slot frees when the send is ACKed;
    "delivery": when every recipient received it); counts, rates and CPU of the window after
    the warm-up. ``profile``: py-spy the edge and the worker for a while after the window."""
    args = ctx.args
    stats = SendStats()
    recipients = pool_fanout(pool, routes)
    profile_s = args.profile_seconds if profile else 0.0
    total_s = warmup + seconds + profile_s
    say(f"  {gate}-gated: {warmup:g} s warm-up + {seconds:g} s" + (f" + {profile_s:g} s py-spy" if profile else ""))
    t0 = time.perf_counter_ns()
    if gate == "ack":
        load = saturate(routes, args.window, total_s, stats)
    else:
        load = saturate_delivered(pool, routes, args.window, total_s, stats, recipients)
    sending = asyncio.create_task(load)
    await asyncio.sleep(warmup)
    before: CpuSnapshot = snapshot(system.pids(ctx))
    w0 = time.perf_counter_ns()
    await asyncio.sleep(seconds)
    w1 = time.perf_counter_ns()
    after = snapshot(system.pids(ctx))
    profiles: dict[str, Any] = {}
    if profile:
        profiles = await run_profilers(ctx, system, profile_s)
    await sending
    recorder = pool.recorder
    window = (w1 - w0) / 1e9
    delivered = recorder.count_between(w0, w1)
    acked = stats.count_between(w0, w1)
    per_second = [recorder.count_between(t0 + i * 10**9, t0 + (i + 1) * 10**9) for i in range(int((w1 - t0) / 1e9))]
    in_window = [lat for t, lat in zip(recorder.recv_ns, recorder.latency_ns, strict=True) if w0 <= t < w1]
    acked_in_window = [lat for t, lat in zip(stats.acked_ns, stats.ack_latency_ns, strict=True) if w0 <= t < w1]
    result = {
        "gate": gate,
        "window_s": window,
        "warmup_s": warmup,
        "outstanding_per_sender": args.window,
        "senders": len(routes),
        "recipients_per_message": recipients,
        "delivered": delivered,
        "delivered_per_s": delivered / window,
        "acked": acked,
        "acked_per_s": acked / window,
        "backlog_at_end": stats.count_between(0, w1) * recipients - recorder.count_between(0, w1),
        "deliveries_per_second": per_second,
        "latency_in_window": latency_summary(in_window),
        "ack_latency": latency_summary(acked_in_window),
        "cpu": cpu_shares(before, after),
        "events": events_of(pool, [stats]),
        "profiles": profiles,
    }
    say(
        f"    delivered {result['delivered_per_s']:,.0f}/s, ACKed {result['acked_per_s']:,.0f}/s; "
        f"send -> receive p50 {result['latency_in_window'].get('p50_ms', float('nan')):,.0f} ms"
    )
    return result


def pool_fanout(pool: ClientPool, routes: list[tuple[ChatClient, TargetType, str]]) -> int:
    """Recipients per message: 1 for 1:1, every other connected member for the group."""
    return 1 if routes[0][1] == "user" else len(pool.clients) - 1


async def run_profilers(ctx: Context, system: System, seconds: float) -> dict[str, Any]:
    binary = py_spy_binary()
    if binary is None:
        return {"error": "py-spy is not installed"}
    spies: dict[str, PySpy] = {}
    for name, service in (("edge", system.edge), ("worker", system.worker)):
        assert service.pid is not None
        spies[name] = PySpy(
            binary,
            service.pid,
            ctx.root / f"{system.name}-{name}.pyspy.txt",
            seconds=seconds,
            rate=ctx.args.py_spy_rate,
        )
    await asyncio.gather(*(spy.wait(seconds + 20) for spy in spies.values()))
    out: dict[str, Any] = {}
    for name, spy in spies.items():
        problem = spy.problem()
        out[name] = {"error": problem} if problem else py_spy_summary(spy.out, ctx.args.top)
    return out


async def prime(
    ctx: Context, pool: ClientPool, routes: list[tuple[ChatClient, TargetType, str]], recipients: int
) -> dict[str, Any]:
    """Warm the fresh pipeline before measuring: a few messages per route, each ACKed, then all
    delivered. On Tansu the first sends of a fresh worker can stall for the Kafka request
    timeout (see docs/benchmarks.md); this is where such a stall shows, not in the figures."""
    stats = SendStats()
    started = time.perf_counter()
    keys: list[int] = []
    for _ in range(PRIME_PER_ROUTE):
        batch = [next_key() for _ in routes]
        keys += batch
        await asyncio.gather(
            *(
                send_one(c, t, target, key, stats, timeout_s=30.0)
                for (c, t, target), key in zip(routes, batch, strict=True)
            )
        )
    count, _ = await wait_deliveries(
        lambda: pool.recorder, min(keys), max(keys), len(keys) * recipients, ctx.args.drain_timeout
    )
    latencies, _, _ = pool.recorder.in_range(min(keys), max(keys))
    result: dict[str, Any] = {
        "messages": len(keys),
        "delivered": count,
        "expected": len(keys) * recipients,
        "seconds": time.perf_counter() - started,
        "latency": latency_summary(latencies),
        "send_errors": dict(stats.errors),
    }
    say(
        f"  primed: {count:,} of {len(keys) * recipients:,} deliveries in {result['seconds']:.1f} s "
        f"(slowest {result['latency'].get('max_ms', float('nan')):,.0f} ms)"
    )
    return result


async def saturation_pair(
    ctx: Context, system: System, pool: ClientPool, routes: list[tuple[ChatClient, TargetType, str]], *, profile: bool
) -> dict[str, Any]:
    """Delivery-gated first (no backlog forms), then ACK-gated on the same system (its backlog
    is never drained: the system is thrown away after it)."""
    args = ctx.args
    primed = await prime(ctx, pool, routes, pool_fanout(pool, routes))
    gated = await measure_saturation(
        ctx,
        system,
        pool,
        routes,
        gate="delivery",
        warmup=args.gated_warmup,
        seconds=args.gated_seconds,
        profile=profile,
    )
    await asyncio.sleep(1.0)  # the last in-flight deliveries of the gated run
    acked = await measure_saturation(
        ctx, system, pool, routes, gate="ack", warmup=args.warmup, seconds=args.seconds, profile=False
    )
    return {"primed": primed, "delivery_gated": gated, "ack_gated": acked}


async def run_w1_saturation(ctx: Context) -> dict[str, Any]:
    args = ctx.args
    system = await start_system(ctx, "w1-saturation")
    pool = ClientPool(system.http, system.secret)
    try:
        users = [f"w1u{i:02d}-{ctx.run_id}" for i in range(args.w1_users)]
        connect_s = await pool.connect(users)
        say(f"  {len(users)} clients signed in in {connect_s:.1f} s")
        result = await saturation_pair(ctx, system, pool, pair_routes(pool, users), profile=args.profile)
    finally:
        await pool.close()
        problems = stop_system(system)
    result.update(startup=system.startup_s, problems=problems, users=args.w1_users, connect_s=connect_s)
    return result


async def run_w2_saturation(ctx: Context) -> dict[str, Any]:
    args = ctx.args
    system = await start_system(ctx, "w2-saturation")
    pool = ClientPool(system.http, system.secret)
    try:
        members, group_id = await make_group(ctx, system, pool, "w2s")
        connect_s = await pool.connect(members)
        routes: list[tuple[ChatClient, TargetType, str]] = [
            (pool.clients[m], "group", group_id) for m in members[: args.w2_senders]
        ]
        say(f"  {len(members)} members signed in in {connect_s:.1f} s")
        result = await saturation_pair(ctx, system, pool, routes, profile=False)
    finally:
        await pool.close()
        problems = stop_system(system)
    result.update(
        startup=system.startup_s,
        problems=problems,
        members=args.w2_members,
        senders=args.w2_senders,
        connect_s=connect_s,
    )
    return result


async def make_group(ctx: Context, system: System, pool: ClientPool, tag: str) -> tuple[list[str], str]:
    members = [f"{tag}m{i:02d}-{ctx.run_id}" for i in range(ctx.args.w2_members)]
    async with HttpApi(system.http, token=pool.token(members[0])) as api:
        group = await api.create_group("bench", members[1:])
    return members, group.group_id


# --- latency --------------------------------------------------------------------------------


async def latency_steps(
    ctx: Context,
    system: System,
    pool: ClientPool,
    routes: list[tuple[ChatClient, TargetType, str]],
    rates: list[float],
    recipients: int,
    *,
    idle: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Each rate (ascending): warm-up, then the measured open-loop step and its drain. With
    ``idle`` (a dict to fill), first ``--idle-cpu-seconds`` of CPU with everyone connected and silent."""
    args = ctx.args
    primed = await prime(ctx, pool, routes, recipients)
    if idle is not None and args.idle_cpu_seconds > 0:
        say(f"  idle: {len(pool.clients)} users connected, nothing sent, {args.idle_cpu_seconds:g} s ...")
        await asyncio.sleep(1.0)  # the priming's last acknowledgements and commits
        before = snapshot(system.pids(ctx))
        await asyncio.sleep(args.idle_cpu_seconds)
        idle.update(
            users=len(pool.clients), seconds=args.idle_cpu_seconds, cpu=cpu_shares(before, snapshot(system.pids(ctx)))
        )
        say(f"    {cpu_line(idle['cpu'])}")
    steps: list[dict[str, Any]] = []
    for rate in sorted(rates):
        say(f"  {rate:g}/s: {args.latency_warmup:g} s warm-up + {args.latency_seconds:g} s ...")
        await paced(routes, rate, args.latency_warmup, SendStats())
        stats = SendStats()
        before = snapshot(system.pids(ctx))
        step = await paced(routes, rate, args.latency_seconds, stats)
        after = snapshot(system.pids(ctx))
        expected = step["messages"] * recipients
        _, waited = await wait_deliveries(
            lambda: pool.recorder, step["first_key"], step["last_key"], expected, args.drain_timeout
        )
        latencies, per_key, last_ns = pool.recorder.in_range(step["first_key"], step["last_key"])
        span_s = (last_ns - step["start_ns"]) / 1e9 if last_ns else float("nan")
        step.update(
            delivered_per_s=len(latencies) / span_s if span_s > 0 else float("nan"),
            rate=rate,
            seconds=args.latency_seconds,
            recipients_per_message=recipients,
            expected_deliveries=expected,
            delivered=len(latencies),
            missing=max(0, expected - sum(min(c, recipients) for c in per_key.values())),
            duplicates=sum(max(0, c - recipients) for c in per_key.values()),
            drain_s=waited,
            latency=latency_summary(latencies),
            ack_latency=latency_summary(stats.ack_latency_ns),
            cpu=cpu_shares(before, after),
            events=events_of(pool, [stats]),
        )
        steps.append(step)
        lat = step["latency"]
        if lat["n"]:
            say(
                f"    p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, max {lat['max_ms']:.0f} ms; "
                f"missing {step['missing']:,}"
            )
    return primed, steps


async def run_w1_latency(ctx: Context) -> dict[str, Any]:
    args = ctx.args
    system = await start_system(ctx, "w1-latency")
    pool = ClientPool(system.http, system.secret)
    try:
        users = [f"w1l{i:02d}-{ctx.run_id}" for i in range(args.w1_users)]
        await pool.connect(users)
        idle: dict[str, Any] = {}
        routes = pair_routes(pool, users)
        primed, steps = await latency_steps(ctx, system, pool, routes, args.w1_rates, 1, idle=idle)
    finally:
        await pool.close()
        problems = stop_system(system)
    result = {
        "primed": primed,
        "steps": steps,
        "startup": system.startup_s,
        "problems": problems,
        "users": args.w1_users,
    }
    if idle:
        result["idle"] = idle
    return result


async def run_w2_latency(ctx: Context) -> dict[str, Any]:
    args = ctx.args
    system = await start_system(ctx, "w2-latency")
    pool = ClientPool(system.http, system.secret)
    try:
        members, group_id = await make_group(ctx, system, pool, "w2l")
        await pool.connect(members)
        routes: list[tuple[ChatClient, TargetType, str]] = [
            (pool.clients[m], "group", group_id) for m in members[: args.w2_senders]
        ]
        primed, steps = await latency_steps(ctx, system, pool, routes, args.w2_rates, len(members) - 1)
    finally:
        await pool.close()
        problems = stop_system(system)
    return {
        "primed": primed,
        "steps": steps,
        "startup": system.startup_s,
        "problems": problems,
        "members": args.w2_members,
    }


# --- idle connections -----------------------------------------------------------------------


async def edge_connections(system: System) -> int | None:
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            return int((await http.get(f"{system.http}/healthz")).json()["connections"])
    except (httpx.HTTPError, ValueError, KeyError):
        return None


async def run_idle(ctx: Context, offered: str) -> dict[str, Any]:
    args = ctx.args
    n = args.idle_connections
    if ctx.nofile < n + 500:
        n = max(0, ctx.nofile - 500)
        say(f"  RLIMIT_NOFILE is {ctx.nofile}: opening only {n} connections")
    compression = None if offered == "none" else offered
    system = await start_system(ctx, f"idle-{offered}", CHAT_WS_HEARTBEAT_S="600")
    secret = system.secret
    tokens = [issue_token(f"idle{i:05d}-{ctx.run_id}", secret, ttl_s=3600)[0] for i in range(n + IDLE_WARMUP)]
    edge_pid = system.edge.pid
    assert edge_pid is not None
    conns = None
    try:
        warm = await open_idle(system.ws, tokens[:IDLE_WARMUP], batch=IDLE_WARMUP, compression=compression)
        warm.abort()
        await asyncio.sleep(3.0)
        rss_before = rss_kib(edge_pid) or 0
        generator_before = rss_kib(os.getpid()) or 0
        before = snapshot(system.pids(ctx))
        last_report = [time.perf_counter()]

        def progress(opened: int, tried: int) -> None:
            if time.perf_counter() - last_report[0] > 5:
                last_report[0] = time.perf_counter()
                say(f"    {opened:,} of {tried:,} signed in, edge RSS {rss_kib(edge_pid) or 0:,} KiB")

        say(f"  opening {n:,} idle connections, {args.idle_batch} at a time ...")
        conns = await open_idle(
            system.ws, tokens[IDLE_WARMUP:], batch=args.idle_batch, compression=compression, progress=progress
        )
        after = snapshot(system.pids(ctx))
        await asyncio.sleep(3.0)
        rss_after = rss_kib(edge_pid) or 0
        generator_after = rss_kib(os.getpid()) or 0
        held = await edge_connections(system)
        still_open = conns.still_open()
        opened = len(conns.sockets)
        result = {
            "target": n,
            "opened": opened,
            "failures": dict(conns.failures),
            "open_s": conns.seconds,
            "sign_ins_per_s": opened / conns.seconds if conns.seconds else float("nan"),
            "still_open_after_3s": still_open,
            "edge_reports_connections": held,
            "edge_rss_before_kib": rss_before,
            "edge_rss_after_kib": rss_after,
            "kib_per_connection": (rss_after - rss_before) / opened if opened else float("nan"),
            "generator_rss_growth_kib": generator_after - generator_before,
            "cpu_while_opening": cpu_shares(before, after),
            "heartbeat_s": 600,
            "compression": offered,
            "deflate_negotiated": conns.compressed,
            "batch": args.idle_batch,
            "nofile_limit": ctx.nofile,
        }
    finally:
        edge_alive = system.edge.alive()
        system.edge.kill()  # first: a live edge would publish a userDisconnected per socket
        if conns is not None:
            conns.abort()
        problems = stop_system(system)
        problems["alive_at_end"]["edge"] = edge_alive
    result.update(startup=system.startup_s, problems=problems)
    return result


# --- the run --------------------------------------------------------------------------------


async def measure(ctx: Context) -> dict[str, Any]:
    args = ctx.args
    results: dict[str, Any] = {}
    if "w1" in args.only:
        say("W1 saturation ...")
        results["w1_saturation"] = await run_w1_saturation(ctx)
        say("W1 latency ...")
        results["w1_latency"] = await run_w1_latency(ctx)
    if "w2" in args.only:
        say("W2 saturation ...")
        results["w2_saturation"] = await run_w2_saturation(ctx)
        say("W2 latency ...")
        results["w2_latency"] = await run_w2_latency(ctx)
    if "idle" in args.only:
        results["idle"] = []
        for offered in ("deflate", "none") if args.idle_compression == "both" else (args.idle_compression,):
            say(f"idle connections, compression offered: {offered} ...")
            results["idle"].append(r := await run_idle(ctx, offered))
            say(f"  {r['opened']:,} open, {r['kib_per_connection']:.1f} KiB each")
    return results


def package_version(name: str) -> str:
    try:
        return installed_version(name)
    except PackageNotFoundError:
        return "-"


def environment(ctx: Context) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "websockets": package_version("websockets"),
        "uvloop": package_version("uvloop"),
        "stack": ctx.stack.name,
        "stack_start_s": ctx.stack.start_s,
        "broker": ctx.stack.broker_label,
        "store": ctx.stack.store_label,
        "settings": BENCH_ENV,
    }


@contextlib.contextmanager
def cleanup(ctx: Context) -> Iterator[None]:
    try:
        yield
    finally:
        for service in ctx.services:
            if service.alive():
                service.kill()


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_edge", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short windows, 1,000 idle connections (~2 min)")
    parser.add_argument("--only", default="w1,w2,idle", help="comma-separated subset of w1,w2,idle")
    parser.add_argument(
        "--seconds", type=float, help="ACK-gated saturation window after the warm-up (default 10; quick 5)"
    )
    parser.add_argument("--warmup", type=float, help="saturation warm-up (default 5; quick 2)")
    parser.add_argument("--window", type=int, default=16, help="outstanding sends per sender at saturation")
    parser.add_argument("--w1-users", type=int, default=50, help="W1 users, in pairs (even)")
    parser.add_argument("--w1-rates", type=floats, default=[200.0, 1000.0], help="W1 offered msg/s (default 200,1000)")
    parser.add_argument("--w2-members", type=int, default=50)
    parser.add_argument("--w2-senders", type=int, default=4)
    parser.add_argument(
        "--w2-rates", type=floats, default=[20.0, 100.0], help="W2 offered group msg/s (default 20,100)"
    )
    parser.add_argument("--latency-seconds", type=float, help="measured seconds per rate (default 10; quick 4)")
    parser.add_argument("--latency-warmup", type=float, help="unmeasured seconds before (default 2; quick 1)")
    parser.add_argument("--gated-seconds", type=float, help="delivery-gated window (default 10; quick 5)")
    parser.add_argument("--gated-warmup", type=float, help="delivery-gated warm-up (default 3; quick 2)")
    parser.add_argument("--drain-timeout", type=float, default=60.0, help="longest wait for a step's deliveries")
    parser.add_argument("--idle-connections", type=int, help="default 10000; quick 1000")
    parser.add_argument("--idle-batch", type=int, default=200, help="connections opened concurrently")
    parser.add_argument(
        "--idle-compression",
        choices=("deflate", "none", "both"),
        help="offer permessage-deflate like ChatClient and browsers, or not, or one run of each "
        "(default both; quick deflate)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the edge and the worker after the W1 window")
    parser.add_argument("--profile-seconds", type=float, help="default 8; quick 5")
    parser.add_argument("--py-spy-rate", type=int, default=100)
    parser.add_argument("--top", type=int, default=12, help="functions listed per profile")
    parser.add_argument(
        "--idle-cpu-seconds",
        type=float,
        help="CPU with the W1 users connected and silent, on the W1 latency system (default 5; quick 3; 0 = skip)",
    )
    parser.add_argument("--ready-timeout", type=float, default=90.0)
    parser.add_argument("--workdir", type=Path, help="keep logs, store files and profiles here")
    add_stack_argument(parser)
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown section")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "seconds": 5.0 if quick else 10.0,
        "warmup": 2.0 if quick else 5.0,
        "latency_seconds": 4.0 if quick else 10.0,
        "latency_warmup": 1.0 if quick else 2.0,
        "idle_connections": 1_000 if quick else 10_000,
        "profile_seconds": 5.0 if quick else 8.0,
        "gated_seconds": 5.0 if quick else 10.0,
        "gated_warmup": 2.0 if quick else 3.0,
        "idle_compression": "deflate" if quick else "both",
        "idle_cpu_seconds": 3.0 if quick else 5.0,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if quick:
        args.drain_timeout = min(args.drain_timeout, 30.0)
    args.only = {part.strip() for part in args.only.split(",") if part.strip()}
    if not args.only <= {"w1", "w2", "idle"}:
        parser.error("--only takes w1, w2, idle")
    if args.w1_users < 2 or args.w1_users % 2 or args.w2_senders > args.w2_members or args.w2_members < 2:
        parser.error("--w1-users must be even and ≥ 2; --w2-members ≥ 2 and ≥ --w2-senders")
    if args.profile and py_spy_binary() is None:
        parser.error("--profile needs py-spy (pip install py-spy)")
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # clean up on kill too
    nofile = raise_nofile(args.idle_connections + 2_000)
    started = time.perf_counter()
    command = "python -m benchmarks.bench_edge " + " ".join(argv if argv is not None else sys.argv[1:])
    stacks = stacks_to_run(args.stack)
    runs: list[dict[str, Any]] = []
    with contextlib.ExitStack() as exits:
        if args.workdir:
            args.workdir.mkdir(parents=True, exist_ok=True)
            root = Path(tempfile.mkdtemp(prefix="bench-edge-", dir=args.workdir))
        else:
            root = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="bench-edge-")))
        say(f"work dir {root}, RLIMIT_NOFILE {nofile}")
        for name in stacks:
            try:
                with started_stack(name, root / name) as stack:
                    runs.append(run_on(stack, root / name / "run", args, nofile, command))
            except Exception as exc:  # one stack failing does not lose the others' figures
                if len(stacks) == 1:
                    raise
                say(f"stack {name} failed: {type(exc).__name__}: {exc}")
                runs.append({"benchmark": "edge", "stack": name, "error": f"{type(exc).__name__}: {exc}"})
    if len(runs) == 1:
        result = runs[0]
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
        emit(result, format_text, format_markdown, markdown=args.markdown, json_path=args.json)
        return 0
    combined: dict[str, Any] = {"benchmark": "edge", "stack": args.stack, "command": command, "runs": runs}
    combined["wall_seconds"] = round(time.perf_counter() - started, 1)
    emit(combined, format_runs_text, format_runs_markdown, markdown=args.markdown, json_path=args.json)
    return 1 if any("error" in run for run in runs) else 0


def run_on(stack: Stack, root: Path, args: argparse.Namespace, nofile: int, command: str) -> dict[str, Any]:
    """Every scenario once on ``stack``: one result, as a single-stack run reports it."""
    started = time.perf_counter()
    root.mkdir(parents=True)
    ctx = Context(args, root, uuid.uuid4().hex[:6], stack, nofile=nofile)
    say(f"== {stack.name}: broker {ctx.target.bootstrap_servers}, work dir {root}")
    env = environment(ctx)
    with cleanup(ctx):
        results = run(measure(ctx))
    result: dict[str, Any] = {"benchmark": "edge", "stack": stack.name, "environment": env, **results}
    result["cassandra_schema_s"] = ctx.schema_s
    result["command"] = command
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    return result


def run(coro: Any) -> dict[str, Any]:
    """The load generator's event loop: uvloop when installed (cheaper per frame), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return dict(asyncio.run(coro))
    return dict(uvloop.run(coro))


# --- reporting ------------------------------------------------------------------------------


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def cpu_line(cpu: dict[str, Any]) -> str:
    p = cpu.get("processes", {})
    parts = []
    for name in PROCESSES:
        if name in p:
            share = p[name]
            main = f" (main thread {share['main']:.0%})" if name in ("worker", "edge") else ""
            parts.append(f"{name} {share['total']:.0%}{main}")
    machine = ""
    if "machine_busy_cores" in cpu:
        machine = f"; machine {cpu['machine_busy_cores']:.2f} of {os.cpu_count()} cores busy (other jobs included)"
    return "CPU, share of one core: " + ", ".join(parts) + machine


def bottleneck(cpu: dict[str, Any]) -> str:
    """The process whose busiest (main) thread is closest to a full core, and whether the
    machine itself is out of CPU."""
    p = cpu.get("processes", {})
    if not p:
        return "unknown (no /proc)"

    def busiest(item: tuple[str, dict[str, float]]) -> float:
        name, share = item
        return share["main"] if name in ("worker", "edge") else share["total"]

    name, share = max(p.items(), key=busiest)
    value = busiest((name, share))
    text = f"{name} ({'event loop' if name in ('worker', 'edge') else 'process'} at {value:.0%} of a core)"
    machine = cpu.get("machine_busy_cores")
    cores = os.cpu_count() or 1
    if machine is not None and machine >= 0.9 * cores:
        ours = sum(v["total"] for v in p.values())
        text += f"; the machine is out of CPU: {machine:.2f} of {cores} cores busy, {ours:.2f} of them these processes"
    return text


def lat_text(lat: dict[str, Any]) -> str:
    if not lat.get("n"):
        return "no samples"
    return (
        f"p50 {lat['p50_ms']:,.1f} ms  p90 {lat['p90_ms']:,.1f} ms  p99 {lat['p99_ms']:,.1f} ms  "
        f"max {lat['max_ms']:,.0f} ms  (n {lat['n']:,})"
    )


def problems_lines(label: str, r: dict[str, Any]) -> list[str]:
    lines = []
    parts = [r.get(k, {}) for k in ("delivery_gated", "ack_gated")] + list(r.get("steps", []))
    events: dict[str, Any] = {}
    for part in parts:
        for key, value in part.get("events", {}).items():
            if value and key != "unparsed":
                events.setdefault(key, value)
    if events:
        lines.append(f"  {label}: client side: {events}")
    problems = r.get("problems", {})
    for service in ("edge", "worker"):
        log = problems.get(f"{service}_log", {})
        if log.get("errors") or log.get("tracebacks"):
            lines.append(f"  {label}: {service} log: {log['errors']} ERROR lines, {log['tracebacks']} tracebacks")
            lines += [f"    {line}" for line in log.get("error_examples", [])]
        kinds = [
            (text, n) for text, n in log.get("warning_kinds", []) if " ready " not in text and "consuming" not in text
        ]
        if kinds:
            lines.append(f"  {label}: {service} log warnings: " + "; ".join(f"{n} x {text}" for text, n in kinds))
    dead = [name for name, ok in problems.get("alive_at_end", {}).items() if not ok]
    if dead:
        lines.append(f"  {label}: died during the scenario: {', '.join(dead)}")
    return lines


def best_delivered(s: dict[str, Any]) -> float:
    return max(float(s[k]["delivered_per_s"]) for k in ("delivery_gated", "ack_gated") if k in s)


def w1_step_at_aim(r: dict[str, Any]) -> dict[str, Any] | None:
    steps = r.get("w1_latency", {}).get("steps", [])
    return next((s for s in steps if s["rate"] == W1_P99_AIM_AT), None)


def primed_line(p: dict[str, Any] | None) -> list[str]:
    if not p:
        return []
    lat = p["latency"]
    return [
        f"  priming (not measured): {p['messages']:,} messages, {p['delivered']:,} of {p['expected']:,} deliveries "
        f"in {p['seconds']:.1f} s; slowest delivery {lat.get('max_ms', float('nan')):,.0f} ms"
    ]


def saturation_lines(s: dict[str, Any], unit: str, per_message: int) -> list[str]:
    lines = primed_line(s.get("primed"))
    for key, label in (
        ("delivery_gated", "closed loop on delivery: a slot frees when every recipient has the message"),
        ("ack_gated", "closed loop on ACK (Kafka has it): the backlog grows without bound"),
    ):
        if key not in s:
            continue
        g = s[key]
        group = f" ({g['delivered_per_s'] / per_message:,.0f} messages/s)" if per_message > 1 else ""
        lines += [
            f"  saturation, {label}; {g['outstanding_per_sender']} outstanding per sender, "
            f"{g['window_s']:.1f} s window after {g['warmup_s']:g} s warm-up:",
            f"    delivered {g['delivered_per_s']:,.0f} {unit}{group}; "
            f"sent (ACKed) {g['acked_per_s']:,.0f} messages/s; "
            f"backlog at window end {g['backlog_at_end']:,} deliveries",
            f"    send -> ACK {lat_text(g['ack_latency'])}",
            f"    send -> receive, deliveries in the window: {lat_text(g['latency_in_window'])}",
            f"    {cpu_line(g['cpu'])}",
            f"    busiest: {bottleneck(g['cpu'])}",
        ]
    return lines


def format_text(r: dict[str, Any]) -> str:
    env = r["environment"]
    load = env["load_average_at_start"]
    lines = [
        f"chat-events end-to-end benchmark  {env['date']}  python {env['python']}  websockets {env['websockets']}  "
        f"cpus {env['cpus']}" + (f"  load {load[0]:.2f}" if load else ""),
        f"stack {env['stack']} (engines up in {env['stack_start_s']:.1f} s); broker: {env['broker']}; "
        f"store: {env['store']}; one worker + one edge + this load generator (uvloop)",
        "settings: " + " ".join(f"{k}={v}" for k, v in env["settings"].items()),
        f"command: {r['command']}",
    ]
    if r.get("cassandra_schema_s"):
        times = r["cassandra_schema_s"]
        lines.append(f"Cassandra keyspaces created (not measured): {len(times)}, {sum(times) / len(times):.1f} s each")
    if "w1_saturation" in r:
        s = r["w1_saturation"]
        lines += ["", f"W1 1:1, {s['users']} users in {s['users'] // 2} pairs"]
        lines += saturation_lines(s, "msg/s to recipients", 1)
    if "w1_latency" in r:
        lines += primed_line(r["w1_latency"].get("primed"))
        idle = r["w1_latency"].get("idle")
        if idle:
            lines.append(
                f"  idle, {idle['users']} users connected and nothing sent, {idle['seconds']:g} s: "
                + cpu_line(idle["cpu"])
            )
        lines.append("  latency, send() -> recipient's receive(), open loop:")
        for step in r["w1_latency"]["steps"]:
            lines += step_lines(step, "msg/s")
    if "w2_saturation" in r:
        s = r["w2_saturation"]
        lines += ["", f"W2 group of {s['members']} members, {s['senders']} senders, all members connected"]
        lines += saturation_lines(s, "deliveries/s to recipients", s["members"] - 1)
    if "w2_latency" in r:
        lines += primed_line(r["w2_latency"].get("primed"))
        lines.append("  latency, send() -> each recipient's receive(), open loop:")
        for step in r["w2_latency"]["steps"]:
            lines += step_lines(step, "group msg/s")
    for i in r.get("idle", []):
        lines += [
            "",
            f"idle connections (one edge, header sign-in, {i['batch']} at a time, "
            f"CHAT_WS_HEARTBEAT_S={i['heartbeat_s']}, compression offered: {i['compression']}, "
            f"negotiated on {i.get('deflate_negotiated', 0):,})",
            f"  opened {i['opened']:,} of {i['target']:,} in {i['open_s']:.1f} s "
            f"({i['sign_ins_per_s']:,.0f} sign-ins/s); "
            f"failures {i['failures'] or 'none'}; still open after 3 s {i['still_open_after_3s']:,}; "
            f"edge /healthz connections {i['edge_reports_connections']}",
            f"  edge RSS {i['edge_rss_before_kib'] / 1024:,.1f} MiB -> {i['edge_rss_after_kib'] / 1024:,.1f} MiB: "
            f"{i['kib_per_connection']:.1f} KiB per connection (load generator grew "
            f"{i['generator_rss_growth_kib'] / 1024:,.0f} MiB, not counted)",
            f"  while opening: {cpu_line(i['cpu_while_opening'])}",
        ]
    lines += ["", "aims (first milestone):"]
    lines += [f"  {text}" for text in aims(r)]
    profiles = r.get("w1_saturation", {}).get("delivery_gated", {}).get("profiles")
    if profiles:
        lines += ["", "where the time goes (py-spy, right after the delivery-gated W1 window, same load):"]
        for name, p in profiles.items():
            lines += profile_lines(name, p)
    problems = []
    for key in ("w1_saturation", "w1_latency", "w2_saturation", "w2_latency"):
        if key in r:
            problems += problems_lines(key, r[key])
    for i in r.get("idle", []):
        problems += problems_lines(f"idle ({i['compression']})", i)
    lines += ["", "problems observed:"] + (problems or ["  none"])
    return "\n".join(lines)


def step_lines(step: dict[str, Any], unit: str) -> list[str]:
    ack = step["ack_latency"]
    return [
        f"    {step['rate']:,.0f} {unit} offered ({step['offered_per_s']:,.0f} achieved, {step['seconds']:g} s, "
        f"{step['messages']:,} messages): {lat_text(step['latency'])}",
        f"      delivered {step['delivered']:,} of {step['expected_deliveries']:,} (missing {step['missing']:,}, "
        f"duplicates {step['duplicates']:,}), the last {step['drain_s']:.1f} s after the last send: "
        f"{step['delivered_per_s']:,.0f} deliveries/s from first send to last delivery; "
        f"send -> ACK p50 {ack.get('p50_ms', float('nan')):.1f} ms p99 {ack.get('p99_ms', float('nan')):.1f} ms",
        f"      {cpu_line(step['cpu'])}",
    ]


def aims(r: dict[str, Any]) -> list[str]:
    out = []
    if "w1_saturation" in r:
        v = best_delivered(r["w1_saturation"])
        out.append(f"W1 ≥ {W1_AIM:,} msg/s: {met(v >= W1_AIM)} - best {v:,.0f} msg/s ({v / W1_AIM:.2f} of it)")
    step = w1_step_at_aim(r)
    if step is not None and step["latency"].get("n"):
        p99 = step["latency"]["p99_ms"]
        ok = p99 <= W1_P99_AIM_MS and step["missing"] == 0
        out.append(
            f"W1 p99 ≤ {W1_P99_AIM_MS:g} ms at {W1_P99_AIM_AT:,.0f} msg/s offered: {met(ok)} - p99 {p99:,.1f} ms"
            + (f", {step['missing']:,} missing" if step["missing"] else "")
        )
    if "w2_saturation" in r:
        v = best_delivered(r["w2_saturation"])
        out.append(f"W2 ≥ {W2_AIM:,} deliveries/s: {met(v >= W2_AIM)} - best {v:,.0f} deliveries/s ({v / W2_AIM:.2f})")
    for i in r.get("idle", []):
        held = i["still_open_after_3s"]
        kib = i["kib_per_connection"]
        label = f"(compression offered: {i['compression']})"
        if i["target"] < IDLE_AIM:
            out.append(f"≥ {IDLE_AIM:,} idle connections per edge {label}: not tried ({i['target']:,} opened)")
        else:
            out.append(f"≥ {IDLE_AIM:,} idle connections per edge {label}: {met(held >= IDLE_AIM)} - {held:,} held")
        out.append(f"< {IDLE_KIB_AIM:g} KiB per idle connection {label}: {met(kib < IDLE_KIB_AIM)} - {kib:.1f} KiB")
    return out


def profile_lines(name: str, p: dict[str, Any]) -> list[str]:
    if "error" in p:
        return [f"  {name}: no profile: {p['error']}"]
    busy = p["busy_samples"] or 1
    threads = ", ".join(f"{k} {t['samples'] - t['idle']:,}" for k, t in list(p["threads"].items())[:4])
    lines = [f"  {name}: {p['busy_samples']:,} busy samples ({threads})"]
    lines.append("    busy samples by area (leaf frame):")
    lines += [f"      {area[:64]:<64}{n / busy:>7.1%}" for area, n in list(p["areas"].items())[:10]]
    lines.append("    top functions by own samples:")
    lines += [f"      {fn[-90:]:<90}{n / busy:>7.1%}" for fn, n in p["top_own"]]
    lines.append("    top functions on the stack (loop plumbing left out):")
    lines += [f"      {fn[-90:]:<90}{n / busy:>7.1%}" for fn, n in p["top_on_stack"]]
    return lines


def cpu_cell(cpu: dict[str, Any], name: str) -> str:
    """A process's share of one core (worker and edge: ``total (event loop)``), ``—`` if absent."""
    p = cpu.get("processes", {})
    if name not in p:
        return "—"
    share = p[name]
    if name in ("worker", "edge"):
        return f"{share['total']:.0%} ({share['main']:.0%})"
    return f"{share['total']:.0%}"


def markdown_cpu_row(label: str, cpu: dict[str, Any], names: tuple[str, ...]) -> str:
    machine = cpu.get("machine_busy_cores")
    machine_text = f"{machine:.2f}" if machine is not None else "—"
    return f"| {label} | " + " | ".join(cpu_cell(cpu, name) for name in names) + f" | {machine_text} |"


def format_markdown(r: dict[str, Any]) -> str:
    lines = ["| workload | figure | measured | aim | met? |", "|---|---|---:|---:|---|"]
    cpu_rows: list[tuple[str, dict[str, Any]]] = []
    for key, name, unit, aim_value in (
        ("w1_saturation", "W1 1:1", "delivered msg/s", W1_AIM),
        ("w2_saturation", "W2 group", "deliveries/s", W2_AIM),
    ):
        s = r.get(key)
        if s is None:
            continue
        best = best_delivered(s)
        for gate, label in (("delivery_gated", "delivery-gated"), ("ack_gated", "ACK-gated")):
            if gate not in s:
                continue
            g = s[gate]
            v = g["delivered_per_s"]
            lines.append(
                f"| {name}, saturation, {label} ({g['outstanding_per_sender']} per sender) | {unit} (ACKed msg/s) "
                f"| {v:,.0f} ({g['acked_per_s']:,.0f}) | ≥ {aim_value:,} | {yes(v >= aim_value)}"
                + (" (best of the two)" if v == best else "")
                + " |"
            )
            cpu_rows.append((f"{name} saturation, {label}", g["cpu"]))
        latency_key = key.replace("saturation", "latency")
        for step in r.get(latency_key, {}).get("steps", []):
            lat = step["latency"]
            aim = f"p99 ≤ {W1_P99_AIM_MS:g} ms" if key == "w1_saturation" and step["rate"] == W1_P99_AIM_AT else "—"
            ok = "—"
            if aim != "—":
                ok = yes(bool(lat.get("n")) and lat["p99_ms"] <= W1_P99_AIM_MS and not step["missing"])
            offered = f"{step['rate']:,.0f} msg/s"
            if step["recipients_per_message"] > 1:
                offered = (
                    f"{step['rate']:,.0f} msg/s = {step['rate'] * step['recipients_per_message']:,.0f} deliveries/s"
                )
            lines.append(
                f"| {name} at {offered} offered | send→receive p50 / p99 / max ms "
                f"| {lat.get('p50_ms', 0):,.1f} / {lat.get('p99_ms', 0):,.1f} / {lat.get('max_ms', 0):,.0f} "
                f"| {aim} | {ok} |"
            )
            cpu_rows.append((f"{name} at {step['rate']:,.0f} msg/s offered", step["cpu"]))
    for i in r.get("idle", []):
        held, kib = i["still_open_after_3s"], i["kib_per_connection"]
        label = f"idle connections, one edge, {i['compression']} offered"
        tried = yes(held >= IDLE_AIM) if i["target"] >= IDLE_AIM else f"not tried ({i['target']:,} opened)"
        lines.append(f"| {label} | held | {held:,} | ≥ {IDLE_AIM:,} | {tried} |")
        lines.append(
            f"| {label} | edge RSS per connection | {kib:.1f} KiB | < {IDLE_KIB_AIM:g} KiB "
            f"| {yes(kib < IDLE_KIB_AIM)} |"
        )
        cpu_rows.append((f"opening idle connections ({i['compression']})", i["cpu_while_opening"]))
    idle = r.get("w1_latency", {}).get("idle")
    if idle:
        cpu_rows.insert(0, (f"idle, {idle['users']} users connected, nothing sent", idle["cpu"]))
    names = tuple(n for n in PROCESSES if n != "cassandra" or any(n in c.get("processes", {}) for _, c in cpu_rows))
    headers = {
        "broker": "broker",
        "cassandra": "cassandra",
        "worker": "worker (event loop)",
        "edge": "edge (event loop)",
        "generator": "load generator",
    }
    lines += [
        "",
        "| CPU, share of one core | " + " | ".join(headers[n] for n in names) + " | machine, cores busy |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    lines += [markdown_cpu_row(label, cpu, names) for label, cpu in cpu_rows]
    profiles = r.get("w1_saturation", {}).get("delivery_gated", {}).get("profiles", {})
    for name, p in profiles.items():
        if "error" in p:
            continue
        busy = p["busy_samples"] or 1
        lines += ["", f"| {name} (py-spy, W1 delivery-gated load), busy samples by area | share |", "|---|---:|"]
        lines += [f"| {area} | {n / busy:.1%} |" for area, n in list(p["areas"].items())[:10]]
        lines += ["", f"| {name}: top functions by own samples | share |", "|---|---:|"]
        lines += [f"| `{fn}` | {n / busy:.1%} |" for fn, n in p["top_own"]]
    lines += [
        "",
        "| reference (the issue): ejabberd on this machine | W1 | W2 |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {v['w1']} | {v['w2']} |" for name, v in EJABBERD.items()]
    return "\n".join(lines)


# --- several stacks: one comparison -----------------------------------------------------------


def run_figures(r: dict[str, Any]) -> dict[str, str]:
    """The figures of one run that the comparison table shows, by row label."""
    out = {"engines up, s": f"{r['environment']['stack_start_s']:.1f}"}
    cpu: list[tuple[str, dict[str, Any]]] = []
    idle = r.get("w1_latency", {}).get("idle")
    if idle:
        cpu.append((f"idle, {idle['users']} users connected", idle["cpu"]))
    for key, name, unit in (("w1_saturation", "W1", "msg/s"), ("w2_saturation", "W2", "deliveries/s")):
        if key not in r:
            continue
        for gate, label in (("delivery_gated", "delivery-gated"), ("ack_gated", "ACK-gated")):
            g = r[key][gate]
            out[f"{name} saturation, {label}, delivered {unit}"] = f"{g['delivered_per_s']:,.0f}"
        cpu.append((f"{name} saturation (delivery-gated)", r[key]["delivery_gated"]["cpu"]))
    problems = 0
    for key, name, unit in (("w1_latency", "W1", "msg/s"), ("w2_latency", "W2", "group msg/s")):
        steps = r.get(key, {}).get("steps", [])
        for step in steps:
            lat = step["latency"]
            value = f"{lat['p50_ms']:,.1f} / {lat['p99_ms']:,.1f}" if lat.get("n") else "no samples"
            out[f"{name} at {step['rate']:g} {unit}, p50 / p99 ms"] = value
            problems += step["missing"] + step["duplicates"]
        if steps:
            cpu.append((f"{name} at {steps[0]['rate']:g} {unit}", steps[0]["cpu"]))
    if any(k in r for k in ("w1_latency", "w2_latency")):
        out["latency steps: missing + duplicate deliveries"] = f"{problems:,}"
    for i in r.get("idle", []):
        out[f"idle connections ({i['compression']} offered): held / KiB each"] = (
            f"{i['still_open_after_3s']:,} / {i['kib_per_connection']:.1f}"
        )
    errors = 0
    for part in [r.get(k, {}) for k in ("w1_saturation", "w1_latency", "w2_saturation", "w2_latency")] + list(
        r.get("idle", [])
    ):
        for service in ("edge", "worker"):
            log = part.get("problems", {}).get(f"{service}_log", {})
            errors += log.get("errors", 0) + log.get("tracebacks", 0)
    out["worker + edge log: ERROR lines + tracebacks"] = f"{errors:,}"
    for name, shares in cpu:
        for process in PROCESSES:
            out[f"CPU {name}: {process}"] = cpu_cell(shares, process)
        machine = shares.get("machine_busy_cores")
        out[f"CPU {name}: machine, cores busy"] = "—" if machine is None else f"{machine:.2f}"
    return out


def run_labels(runs: list[dict[str, Any]]) -> list[str]:
    return [str(r["stack"]) for r in runs]


def format_runs_text(combined: dict[str, Any]) -> str:
    parts = []
    for label, run in zip(run_labels(combined["runs"]), combined["runs"], strict=True):
        body = f"failed: {run['error']}" if "error" in run else format_text(run)
        parts.append(f"===== {label} =====\n{body}")
    table = comparison_text(run_labels(combined["runs"]), comparison_rows(combined["runs"], run_figures))
    parts.append(
        "comparison (CPU = share of one core, worker and edge: total (event loop); only ratios within one run "
        "mean anything):\n" + table
    )
    return "\n\n".join(parts)


def format_runs_markdown(combined: dict[str, Any]) -> str:
    parts = [
        f"#### {label}\n\n{format_markdown(run)}"
        for label, run in zip(run_labels(combined["runs"]), combined["runs"], strict=True)
        if "error" not in run
    ]
    parts.append(comparison_markdown(run_labels(combined["runs"]), comparison_rows(combined["runs"], run_figures)))
    return "\n\n".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
