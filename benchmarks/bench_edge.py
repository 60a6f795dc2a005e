"""End to end through one edge and one worker: issue 12's workload (W1 1:1, W2 group), per stack.

Run from the repository root::

    python -m benchmarks.bench_edge [--stack embedded|kafka|kafka-cassandra|all] [--quick]
                                    [--markdown] [--json PATH] [--profile] [--ack-gated]
                                    [--only w1,w2,w2changes,reads,idle]

Everything runs on this machine at once: the broker and store of ``--stack`` (see
:mod:`benchmarks.stacks`; default ``embedded`` = the embedded broker, Tansu, memory only, or the
cluster in ``CHAT_KAFKA_BOOTSTRAP_SERVERS``, and the embedded SQLite store; ``kafka`` = real
Apache Kafka started for this run; ``kafka-cassandra`` = real Kafka and real Cassandra, a fresh
keyspace per system; ``all`` = each in turn), one ``chat-events worker`` process, one
``chat-events edge`` process (uvicorn on a free port) and the load generator (this process,
asyncio on uvloop, one :class:`chat_events.client.ChatClient` per user). Every scenario below gets
a fresh worker and edge with a fresh data directory, topic prefix and consumer group. Settings
changed from the defaults: only the per-user send rate limits are raised
(``CHAT_SEND_RATE_PER_S=1000000``, ``CHAT_SEND_BURST=1000000``; the report says so); with
``--ack-gated`` the saturation edges also queue up to 100,000 frames per socket.

The workload is issue 12's, exactly (:mod:`benchmarks.workload`): 50 users ``u0..u49``, one
socket each, all online, bodies of ~65 bytes carrying the send's ``perf_counter_ns``; latency =
the recipient client's receive time - that stamp (one process, one clock). The clients behave
like real ones: each delivery is acked, coalesced (at most one ``ack`` per socket per 200 ms or
per 50 deliveries: ``ChatClient``'s ``ack_interval_s``/``ack_every``), heartbeats go out at the
interval the edge announces (30 s by default), and every send waits for its answer (pipelined up
to the phase's window). A delivery of a message to its own sender (the sender's inbox copy) is not
counted. Every **phase** is one continuous load, ``--warmup`` (5 s) then a ``--seconds`` (20 s)
window: throughput = deliveries received in the window / the window, latency percentiles = those
deliveries'; then sending stops, everything outstanding must arrive within ``--drain-timeout``,
and lost = expected (answered sends of the phase x recipients) - delivered (distinct message x
recipient); duplicates and failed sends are counted too. CPU of the broker, Cassandra, the worker,
the edge and this process (and of the whole machine) is read from ``/proc`` over each window.

* **W1, 1:1** (``--only w1``): fixed pairs ``u2k <-> u2k+1``, everyone sends to the partner.
  *Saturation* (one system): closed loop, each sender keeps ≤ ``--w1-window`` (8) messages not
  yet delivered to the partner. *Latency and idle* (another system): first the **idle** CPU, 50
  users connected and nothing sent, ``--idle-cpu-seconds`` (20 s) after ``--warmup`` of settling,
  summed over all server processes (broker, Cassandra, worker, edge); then open loop,
  ``--w1-rates`` (200) messages/s in total, message i sent at start + i/rate, round-robin over
  the 50 senders (evenly staggered).
* **W2, group** (``--only w2``): one group of all 50 (created over HTTP by ``u0``), senders
  ``u0..u3`` (``--w2-senders``); a delivery = one message at one member other than its sender (49
  per message). *Saturation*: ≤ ``--w2-window`` (4) messages per sender not yet received by all
  49. *Latency*: open loop, ``--w2-rates`` (4) group messages/s in total.
* **W2 + 10% changes** (``--only w2changes``, issue 16; ``--only w2,w2changes`` puts both in one
  run and one table): W2 exactly, saturation and latency, each on a fresh system, but each send
  slot is, with probability ``--w2-change-share`` (0.1), a change instead: an edit of one of the
  sender's own recent messages or a reaction (added, sometimes taken back) on any recent group
  message, always one the sending client has already received (so it is stored). A change
  reaches the 49 other members as a delivery of its own (``kind`` edit / reaction_add /
  reaction_remove) and counts as 49 deliveries, its latency measured from the send of the change
  (:mod:`benchmarks.edge_changes`); the detail shows the changes' own latency too.

The report: each run in detail, then issue 12's table, one column per stack run: W1 saturation
msg/s; W1 at 200 msg/s p50 / p99 ms; W2 saturation deliveries/s; W2 at 4 msg/s (196 del/s) p50 /
p99 ms; idle CPU with 50 users connected, all server processes; lost. An open-loop rate whose
window delivered under 90 % of it reads "not sustained (achieved/s, p50 ms)". Then the issue's
targets for that stack (``embedded`` and ``kafka``: the default ``up`` stack's column;
``kafka-cassandra``: real Kafka + real Cassandra) and ejabberd's reference figures.

Extras, not part of the issue's workload and not in its table: ``--prime N`` sends N messages per
sender (each answered, all delivered) before a system's first phase; ``--ack-gated`` adds, after
each saturation phase on the same system, a closed loop on the send's *answer* (Kafka has it;
``--ack-window`` 16 per sender; the backlog grows, so it is not drained); ``--profile`` runs
``py-spy record`` on the edge and the worker for ``--profile-seconds`` right after the W1
saturation window, under the same load (the window is not profiled); ``--only idle`` opens
``--idle-connections`` (10,000) raw ``websockets`` connections (header sign-in, one user each,
tokens minted with the edge's secret), ``--idle-batch`` (200) at a time, once offering
permessage-deflate and once without (``--idle-compression``), each on a fresh edge with
``CHAT_WS_HEARTBEAT_S=600``, and reports the edge's memory per connection. ``--quick``: 2 s
warm-up, 5 s windows, 3 s idle, 30 s drain limit, 1,000 idle connections (a smoke run).
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

from benchmarks.edge_changes import CHANGE_SHARE, ChangeMix
from benchmarks.edge_load import (
    ClientPool,
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
from benchmarks.edge_report import format_result_markdown, format_result_text
from benchmarks.report import emit
from benchmarks.stacks import Stack, add_stack_argument, keyspace_name, stacks_to_run, started_stack
from benchmarks.workload import (
    ACK_EVERY,
    ACK_INTERVAL_S,
    USERS,
    W1_OUTSTANDING,
    W1_RATE,
    W2_OUTSTANDING,
    W2_RATE,
    W2_SENDERS,
    WARMUP_S,
    WINDOW_S,
    Route,
    group_routes,
    idle_cpu,
    pair_routes,
    run_phase,
    user_names,
)
from chat_events.api.tokens import issue_token
from chat_events.cli.read_marker import READ_INTERVAL_S
from chat_events.client import HttpApi
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.settings import Settings

BENCH_ENV = {"CHAT_SEND_RATE_PER_S": "1000000", "CHAT_SEND_BURST": "1000000"}
"""The only settings changed from the defaults: the per-user rate limits, raised for the benchmark."""
ACK_GATED_ENV = {"CHAT_WS_OUTBOUND_QUEUE": "100000"}
"""With ``--ack-gated`` only (saturation systems): its backlog must not close a socket for being slow."""
IDLE_WARMUP = 50
"""Connections opened and closed before the idle baseline (first-use allocations, imports)."""
WORKLOAD = (
    "issue 12: 50 users u0..u49, one socket each, all online; ~65-byte bodies carrying the send time; "
    "each phase {warmup:g} s warm-up + {seconds:g} s window, then drained (lost = expected - delivered); "
    "clients ack coalesced (≤ 1 per socket per {ack_ms:.0f} ms or per {ack_every} deliveries), send heartbeats, "
    "and each send waits for its answer"
)


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
    if ctx.args.transactions and not ctx.stack.target.embedded:
        env["CHAT_KAFKA_TRANSACTIONS"] = ctx.args.transactions
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


def new_pool(system: System) -> ClientPool:
    return ClientPool(system.http, system.secret, ack_interval_s=ACK_INTERVAL_S, ack_every=ACK_EVERY)


def phase_say(p: dict[str, Any], unit: str) -> None:
    lat = p["latency"]
    lost = "not drained" if p["lost"] is None else f"lost {p['lost']:,} of {p['expected']:,}"
    say(
        f"    delivered {p['delivered_per_s']:,.0f} {unit} in the window; send -> receive p50 "
        f"{lat.get('p50_ms', float('nan')):,.1f} ms p99 {lat.get('p99_ms', float('nan')):,.1f} ms; {lost}"
    )


async def phase(
    ctx: Context, system: System, pool: ClientPool, load: Any, recipients: int, **options: Any
) -> dict[str, Any]:
    args = ctx.args
    return await run_phase(
        pool,
        load,
        recipients=recipients,
        warmup_s=args.warmup,
        seconds=args.seconds,
        pids=lambda: system.pids(ctx),
        drain_timeout_s=args.drain_timeout,
        **options,
    )


async def saturation(
    ctx: Context,
    system: System,
    pool: ClientPool,
    routes: list[Route],
    *,
    outstanding: int,
    recipients: int,
    profile: bool,
    mix: ChangeMix | None = None,
) -> dict[str, Any]:
    """The closed loop on delivery (≤ ``outstanding`` per sender not yet at every recipient;
    with ``mix``, some of the slots are changes); with ``--ack-gated`` (not with ``mix``), then
    the closed loop on the answer on the same system."""
    args = ctx.args
    out: dict[str, Any] = {"senders": len(routes), "outstanding_per_sender": outstanding}
    if args.prime:
        out["primed"] = await prime(ctx, pool, routes, recipients)
    extra_s = args.profile_seconds if profile else 0.0
    say(
        f"  closed loop, ≤ {outstanding} per sender not yet at all {recipients} recipients: "
        f"{args.warmup:g} s warm-up + {args.seconds:g} s" + (f" + {extra_s:g} s py-spy" if profile else "")
    )

    async def load(seconds: float, stats: SendStats) -> None:
        await saturate_delivered(
            pool, routes, outstanding, seconds, stats, recipients, send=mix.send if mix is not None else None
        )

    async def profilers() -> dict[str, Any]:
        return await run_profilers(ctx, system, extra_s)

    out["phase"] = await phase(
        ctx, system, pool, load, recipients, extra_s=extra_s, during_extra=profilers if profile else None
    )
    changes_say(out["phase"], mix)
    phase_say(out["phase"], "deliveries/s")
    if args.ack_gated and mix is None:
        say(f"  extra: closed loop on the answer, {args.ack_window} per sender (not drained)")

        async def ack_load(seconds: float, stats: SendStats) -> None:
            await saturate(routes, args.ack_window, seconds, stats)

        out["ack_gated"] = await phase(ctx, system, pool, ack_load, recipients, drain=False)
        out["ack_gated"]["outstanding_per_sender"] = args.ack_window
        phase_say(out["ack_gated"], "deliveries/s")
    return out


async def latency(
    ctx: Context,
    system: System,
    pool: ClientPool,
    routes: list[Route],
    rates: list[float],
    recipients: int,
    mix: ChangeMix | None = None,
) -> dict[str, Any]:
    """Open loop at each rate (ascending), each a phase of its own on this system (with ``mix``,
    some of the slots are changes)."""
    out: dict[str, Any] = {"senders": len(routes), "steps": []}
    if ctx.args.prime:
        out["primed"] = await prime(ctx, pool, routes, recipients)
    for rate in sorted(rates):
        say(f"  open loop, {rate:g} msg/s: {ctx.args.warmup:g} s warm-up + {ctx.args.seconds:g} s")

        async def load(seconds: float, stats: SendStats, rate: float = rate) -> None:
            await paced(routes, rate, seconds, stats, send=mix.send if mix is not None else None)

        step = await phase(ctx, system, pool, load, recipients)
        step["rate"] = rate
        changes_say(step, mix)
        phase_say(step, "deliveries/s")
        out["steps"].append(step)
    return out


def changes_say(p: dict[str, Any], mix: ChangeMix | None) -> None:
    """With ``mix``: its summary of the phase into ``p["changes"]``, and a line about it."""
    if mix is None:
        return
    c = p["changes"] = mix.phase_summary(p["window_ns"])
    lat, slots = c["latency"], c["slots"]
    kinds = ", ".join(f"{kind} {slots.get(kind, 0):,}" for kind in ("send", "edit", "reaction_add", "reaction_remove"))
    say(
        f"    slots: {kinds} (no target yet {slots.get('no_target', 0):,}); changes alone p50 "
        f"{lat.get('p50_ms', float('nan')):,.1f} ms p99 {lat.get('p99_ms', float('nan')):,.1f} ms"
    )


def finished(result: dict[str, Any], system: System, problems: dict[str, Any], **extra: Any) -> dict[str, Any]:
    result.update(startup=system.startup_s, problems=problems, **extra)
    return result


async def run_w1_saturation(ctx: Context) -> dict[str, Any]:
    args = ctx.args
    extra_env = ACK_GATED_ENV if args.ack_gated else {}
    system = await start_system(ctx, "w1-saturation", **extra_env)
    pool = new_pool(system)
    try:
        users = user_names(args.w1_users)
        connect_s = await pool.connect(users)
        say(f"  {len(users)} clients signed in in {connect_s:.1f} s")
        result = await saturation(
            ctx, system, pool, pair_routes(pool, users), outstanding=args.w1_window, recipients=1, profile=args.profile
        )
    finally:
        await pool.close()
        problems = stop_system(system)
    return finished(result, system, problems, users=args.w1_users, connect_s=connect_s)


async def run_w1_latency(ctx: Context) -> dict[str, Any]:
    args = ctx.args
    system = await start_system(ctx, "w1-latency")
    pool = new_pool(system)
    try:
        users = user_names(args.w1_users)
        connect_s = await pool.connect(users)
        idle = None
        if args.idle_cpu_seconds > 0:
            say(f"  idle: {len(users)} users connected, nothing sent: {args.warmup:g} s + {args.idle_cpu_seconds:g} s")
            idle = await idle_cpu(
                lambda: system.pids(ctx), users=len(users), settle_s=args.warmup, seconds=args.idle_cpu_seconds
            )
            say(f"    all server processes {idle['server_share']:.1%} of one core")
        result = await latency(ctx, system, pool, pair_routes(pool, users), args.w1_rates, 1)
    finally:
        await pool.close()
        problems = stop_system(system)
    if idle is not None:
        result["idle"] = idle
    return finished(result, system, problems, users=args.w1_users, connect_s=connect_s)


async def run_w1_reads(ctx: Context) -> dict[str, Any]:
    """W1 at its first offered rate twice on one stack, in one run: recipients only receive, then
    every delivery is also read (an app in the foreground: one ``read`` per conversation per
    ``READ_INTERVAL_S`` at most), each on a fresh system (issue 15)."""
    args = ctx.args
    out: dict[str, Any] = {}
    for mode, interval in (("reads_off", None), ("reads_on", READ_INTERVAL_S)):
        system = await start_system(ctx, f"w1-{mode.replace('_', '-')}")
        pool = new_pool(system)
        pool.read_interval_s = interval
        try:
            users = user_names(args.w1_users)
            await pool.connect(users)
            say(f"  {mode}:")
            result = await latency(ctx, system, pool, pair_routes(pool, users), args.w1_rates[:1], 1)
        finally:
            await pool.close()
            problems = stop_system(system)
        out[mode] = finished(result, system, problems, users=args.w1_users)
    return out


async def make_group(system: System, pool: ClientPool, members: list[str]) -> str:
    async with HttpApi(system.http, token=pool.token(members[0])) as api:
        group = await api.create_group("bench", members[1:])
    return group.group_id


async def run_w2(ctx: Context, kind: str, changes: float = 0.0) -> dict[str, Any]:
    """W2 ``saturation`` or ``latency`` on a fresh system; with ``changes`` > 0, that share of
    the sends are edits and reactions instead (issue 16)."""
    args = ctx.args
    extra_env = ACK_GATED_ENV if args.ack_gated and kind == "saturation" and not changes else {}
    system = await start_system(ctx, f"w2{'changes' if changes else ''}-{kind}", **extra_env)
    pool = new_pool(system)
    mix = None
    if changes:
        mix = ChangeMix(pool, changes)
        pool.observer = mix.observe
    try:
        members = user_names(args.w2_members)
        group_id = await make_group(system, pool, members)
        connect_s = await pool.connect(members)
        say(f"  {len(members)} members signed in in {connect_s:.1f} s")
        routes = group_routes(pool, members, group_id, args.w2_senders)
        recipients = len(members) - 1
        if kind == "saturation":
            result = await saturation(
                ctx, system, pool, routes, outstanding=args.w2_window, recipients=recipients, profile=False, mix=mix
            )
        else:
            result = await latency(ctx, system, pool, routes, args.w2_rates, recipients, mix)
    finally:
        await pool.close()
        problems = stop_system(system)
    if changes:
        result["change_share"] = changes
    return finished(result, system, problems, members=args.w2_members, connect_s=connect_s)


# --- priming and profiling -----------------------------------------------------------------


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


async def prime(ctx: Context, pool: ClientPool, routes: list[Route], recipients: int) -> dict[str, Any]:
    """``--prime N`` (an extra, not the issue's workload): N messages per route, each answered,
    then all delivered, before the system's first phase; a slow first send shows here."""
    stats = SendStats()
    started = time.perf_counter()
    keys: list[int] = []
    for _ in range(ctx.args.prime):
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


# --- the run --------------------------------------------------------------------------------


async def measure(ctx: Context) -> dict[str, Any]:
    args = ctx.args
    results: dict[str, Any] = {}
    if "w1" in args.only:
        say("W1 saturation ...")
        results["w1_saturation"] = await run_w1_saturation(ctx)
        say("W1 idle and latency ...")
        results["w1_latency"] = await run_w1_latency(ctx)
    if "reads" in args.only:
        say("W1 with reads off and on ...")
        results["w1_reads"] = await run_w1_reads(ctx)
    if "w2" in args.only:
        say("W2 saturation ...")
        results["w2_saturation"] = await run_w2(ctx, "saturation")
        say("W2 latency ...")
        results["w2_latency"] = await run_w2(ctx, "latency")
    if "w2changes" in args.only:
        share = args.w2_change_share
        say(f"W2 + {share:.0%} changes saturation ...")
        results["w2changes_saturation"] = await run_w2(ctx, "saturation", share)
        say(f"W2 + {share:.0%} changes latency ...")
        results["w2changes_latency"] = await run_w2(ctx, "latency", share)
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
    args = ctx.args
    settings = dict(BENCH_ENV)
    if args.ack_gated:
        settings.update({f"{k} (saturation, --ack-gated)": v for k, v in ACK_GATED_ENV.items()})
    if args.transactions and not ctx.stack.target.embedded:
        settings["CHAT_KAFKA_TRANSACTIONS"] = args.transactions
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
        "settings": settings,
        "workload": WORKLOAD.format(
            warmup=args.warmup, seconds=args.seconds, ack_ms=ACK_INTERVAL_S * 1000, ack_every=ACK_EVERY
        ),
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_edge", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 s warm-up, 5 s windows, 3 s idle")
    parser.add_argument(
        "--only",
        default="w1,w2",
        help="comma-separated subset of w1,w2,w2changes,reads,idle (w2changes = W2 with a share of the sends "
        "replaced by edits and reactions; reads = W1 latency with every delivery read vs not; "
        "idle = idle connections; default w1,w2)",
    )
    parser.add_argument("--seconds", type=float, help=f"measured window of every phase (default {WINDOW_S:g}; quick 5)")
    parser.add_argument("--warmup", type=float, help=f"warm-up before every window (default {WARMUP_S:g}; quick 2)")
    parser.add_argument("--w1-users", type=int, default=USERS, help="W1 users, in pairs (even)")
    parser.add_argument(
        "--w1-window", type=int, default=W1_OUTSTANDING, help="W1 saturation: per sender, not yet delivered"
    )
    parser.add_argument("--w1-rates", type=floats, default=[W1_RATE], help=f"W1 offered msg/s (default {W1_RATE:g})")
    parser.add_argument("--w2-members", type=int, default=USERS)
    parser.add_argument("--w2-senders", type=int, default=W2_SENDERS)
    parser.add_argument(
        "--w2-window", type=int, default=W2_OUTSTANDING, help="W2 saturation: per sender, not yet at every member"
    )
    parser.add_argument(
        "--w2-rates", type=floats, default=[W2_RATE], help=f"W2 offered group msg/s (default {W2_RATE:g})"
    )
    parser.add_argument(
        "--w2-change-share",
        type=float,
        default=CHANGE_SHARE,
        help=f"--only w2changes: share of the send slots that are edits/reactions (default {CHANGE_SHARE:g})",
    )
    parser.add_argument(
        "--idle-cpu-seconds",
        type=float,
        help="idle CPU with the W1 users connected and silent (default = --seconds; quick 3; 0 = skip)",
    )
    parser.add_argument("--drain-timeout", type=float, default=60.0, help="longest wait for a phase's deliveries")
    parser.add_argument("--prime", type=int, default=0, help="extra: messages per sender before a system's phases")
    parser.add_argument("--ack-gated", action="store_true", help="extra: also a closed loop on the send's answer")
    parser.add_argument("--ack-window", type=int, default=16, help="--ack-gated: outstanding sends per sender")
    parser.add_argument("--idle-connections", type=int, help="--only idle: default 10000; quick 1000")
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
    parser.add_argument("--ready-timeout", type=float, default=90.0)
    parser.add_argument("--workdir", type=Path, help="keep logs, store files and profiles here")
    add_stack_argument(parser)
    parser.add_argument(
        "--transactions",
        choices=("on", "off"),
        help="CHAT_KAFKA_TRANSACTIONS of the worker on real Kafka (default: the product's auto, on there)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--markdown", action="store_true", help="also print the table (and CPU) as Markdown")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "seconds": 5.0 if quick else WINDOW_S,
        "warmup": 2.0 if quick else WARMUP_S,
        "idle_connections": 1_000 if quick else 10_000,
        "profile_seconds": 5.0 if quick else 8.0,
        "idle_compression": "deflate" if quick else "both",
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.idle_cpu_seconds is None:
        args.idle_cpu_seconds = 3.0 if quick else args.seconds
    if quick:
        args.drain_timeout = min(args.drain_timeout, 30.0)
    args.only = {part.strip() for part in args.only.split(",") if part.strip()}
    if not args.only <= {"w1", "w2", "w2changes", "reads", "idle"}:
        parser.error("--only takes w1, w2, w2changes, reads, idle")
    if not 0 < args.w2_change_share <= 1:
        parser.error("--w2-change-share must be in (0, 1]")
    if args.w1_users < 2 or args.w1_users % 2 or args.w2_senders > args.w2_members or args.w2_members < 2:
        parser.error("--w1-users must be even and ≥ 2; --w2-members ≥ 2 and ≥ --w2-senders")
    if min(args.w1_window, args.w2_window, args.ack_window) < 1:
        parser.error("--w1-window, --w2-window and --ack-window must be ≥ 1")
    if args.profile and py_spy_binary() is None:
        parser.error("--profile needs py-spy (pip install py-spy)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # clean up on kill too
    nofile = raise_nofile((args.idle_connections if "idle" in args.only else 0) + 2_000)
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
    combined = {"benchmark": "edge", "stack": args.stack, "command": command, "runs": runs}
    result = runs[0] if len(runs) == 1 else combined
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    emit(result, format_result_text, format_result_markdown, markdown=args.markdown, json_path=args.json)
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


if __name__ == "__main__":
    raise SystemExit(main())
