"""Issue 12's workload, which ``benchmarks.bench_edge`` runs by default, and its one-table summary.

The workload (issue 12, "The workload (make bench_edge match it)"): 50 users ``u0..u49``, one
socket each, all online; bodies of ~65 bytes carrying the send timestamp; latency = receive time
at the recipient's client - send time (one process, one clock). Every phase is one continuous
load: :data:`WARMUP_S` of warm-up, then a :data:`WINDOW_S` window; throughput = deliveries
received in the window / the window; latency = those deliveries' latencies. Then sending stops,
every message still outstanding must arrive, and lost = expected - delivered (expected = every
answered send of the phase, warm-up included, times its recipients).

* W1: fixed pairs ``u2k <-> u2k+1``, everyone sends to the partner. Saturation: closed loop, each
  sender keeps at most :data:`W1_OUTSTANDING` messages not yet delivered to the partner. Latency:
  open loop, :data:`W1_RATE` messages/s in total, evenly staggered over the senders.
* W2: one group of all 50, senders ``u0..u3``; a delivery = one message at one member other than
  its sender (49 per message). Saturation: at most :data:`W2_OUTSTANDING` messages per sender not
  yet received by all 49. Latency: open loop, :data:`W2_RATE` group messages/s in total.

This module holds the pieces that define those figures: :func:`run_phase` (warm-up, window,
drain, lost) and :func:`idle_cpu`, and the issue's table (:func:`issue_rows`) with its targets.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from benchmarks.edge_load import ClientPool, Recorder, SendStats, cpu_shares, latency_summary, next_key, snapshot
from benchmarks.report import comparison_markdown, comparison_rows, comparison_text
from chat_events.client import ChatClient
from chat_events.client.models import TargetType

USERS = 50
W1_OUTSTANDING = 8
"""W1 saturation: messages per sender not yet delivered to the partner."""
W2_SENDERS = 4
W2_OUTSTANDING = 4
"""W2 saturation: messages per sender not yet received by every other member."""
W1_RATE = 200.0
"""W1 latency: messages/s offered in total."""
W2_RATE = 4.0
"""W2 latency: group messages/s offered in total (x 49 deliveries)."""
WARMUP_S = 5.0
WINDOW_S = 20.0
ACK_INTERVAL_S = 0.2
ACK_EVERY = 50
"""Clients' coalesced acks: at most one per socket per 200 ms, or per 50 deliveries."""
SERVER_PROCESSES = ("broker", "cassandra", "worker", "edge")
"""What "all server processes" sums (the load generator is not a server process)."""
SUSTAINED = 0.9
"""An open-loop rate counts as sustained when the window delivered at least this share of it."""

Route = tuple[ChatClient, TargetType, str]
Load = Callable[[float, SendStats], Coroutine[Any, Any, Any]]
"""Runs the senders for the given seconds, counting answered sends in the stats."""
Pids = Callable[[], dict[str, int | None]]


def user_names(n: int = USERS) -> list[str]:
    return [f"u{i}" for i in range(n)]


def pair_routes(pool: ClientPool, users: Sequence[str]) -> list[Route]:
    """W1: ``u2k`` sends to ``u2k+1`` and back."""
    return [(pool.clients[users[i]], "user", users[i ^ 1]) for i in range(len(users))]


def group_routes(pool: ClientPool, members: Sequence[str], group_id: str, senders: int) -> list[Route]:
    """W2: the first ``senders`` members send to the group."""
    return [(pool.clients[m], "group", group_id) for m in members[:senders]]


class Tally:
    """Distinct (message, recipient) deliveries of a phase's answered sends, scanned incrementally
    from the pool's :class:`Recorder`; a second delivery of a message to one recipient is a duplicate."""

    def __init__(self, recorder: Recorder, start: int, answered: set[int], first_key: int, last_key: int) -> None:
        self._recorder = recorder
        self._pos = start
        self._answered = answered
        self._first, self._last = first_key, last_key
        self._seen: set[int] = set()
        self.duplicates = 0
        self.unanswered = 0
        """Deliveries of messages whose send failed (timed out, refused) but arrived anyway."""

    def scan(self) -> int:
        """Distinct deliveries so far."""
        keys, users = self._recorder.keys, self._recorder.users
        end = len(keys)
        for i in range(self._pos, end):
            key = keys[i]
            if key in self._answered:
                pair = (key << 16) | users[i]
                if pair in self._seen:
                    self.duplicates += 1
                else:
                    self._seen.add(pair)
            elif self._first <= key <= self._last:
                self.unanswered += 1
        self._pos = end
        return len(self._seen)


def events_of(pool: ClientPool, stats: Sequence[SendStats]) -> dict[str, Any]:
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


async def run_phase(
    pool: ClientPool,
    load: Load,
    *,
    recipients: int,
    warmup_s: float,
    seconds: float,
    pids: Pids,
    drain_timeout_s: float,
    drain: bool = True,
    extra_s: float = 0.0,
    during_extra: Callable[[], Awaitable[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """One phase: ``load`` for ``warmup_s`` + ``seconds`` (+ ``extra_s``, during which
    ``during_extra`` runs, e.g. a profiler); figures of the deliveries received in the window;
    then, with ``drain``, wait until every answered send reached all its recipients (or
    ``drain_timeout_s``) and count what is lost."""
    recorder = pool.recorder
    start = len(recorder.keys)
    stats = SendStats()
    first_key = next_key()
    total_s = warmup_s + seconds + extra_s
    t0 = time.perf_counter_ns()
    sending = asyncio.create_task(load(total_s, stats))
    try:
        await asyncio.sleep(warmup_s)
        before = snapshot(pids())
        w0 = time.perf_counter_ns()
        await asyncio.sleep(seconds)
        w1 = time.perf_counter_ns()
        after = snapshot(pids())
        extra = await during_extra() if during_extra is not None else {}
        await sending
    except BaseException:
        sending.cancel()
        raise
    answered = set(stats.acked_keys)
    expected = len(answered) * recipients
    tally = Tally(recorder, start, answered, first_key, next_key())
    drain_started = time.perf_counter()
    delivered = tally.scan()
    while drain and delivered < expected and time.perf_counter() - drain_started < drain_timeout_s:
        await asyncio.sleep(0.1)
        delivered = tally.scan()
    window_s = (w1 - w0) / 1e9
    received = list(
        zip(
            itertools.islice(recorder.recv_ns, start, None),
            itertools.islice(recorder.latency_ns, start, None),
            strict=True,
        )
    )
    in_window = [lat for t, lat in received if w0 <= t < w1]
    seconds_total = int((w1 - t0) / 1e9)
    per_second = [0] * seconds_total
    for t, _ in received:
        i = (t - t0) // 10**9
        if 0 <= i < seconds_total:
            per_second[i] += 1
    answers = [lat for t, lat in zip(stats.acked_ns, stats.ack_latency_ns, strict=True) if w0 <= t < w1]
    return {
        "warmup_s": warmup_s,
        "window_s": window_s,
        "window_ns": (w0, w1),
        "recipients_per_message": recipients,
        "messages_sent": stats.issued,
        "offered_per_s": stats.issued / total_s if total_s > 0 else float("nan"),
        "answered": len(answered),
        "answered_in_window_per_s": len(answers) / window_s if window_s > 0 else float("nan"),
        "delivered_in_window": len(in_window),
        "delivered_per_s": len(in_window) / window_s if window_s > 0 else float("nan"),
        "deliveries_per_second": per_second,
        "latency": latency_summary(in_window),
        "answer_latency": latency_summary(answers),
        "drained": drain,
        "drain_s": time.perf_counter() - drain_started,
        "expected": expected,
        "delivered": delivered,
        "lost": expected - delivered if drain else None,
        "duplicates": tally.duplicates,
        "delivered_unanswered": tally.unanswered,
        "cpu": cpu_shares(before, after),
        "events": events_of(pool, [stats]),
        "profiles": extra,
    }


def server_share(cpu: dict[str, Any]) -> float:
    """CPU of all server processes together, as a share of one core."""
    p = cpu.get("processes", {})
    return float(sum(p[name]["total"] for name in SERVER_PROCESSES if name in p))


async def idle_cpu(pids: Pids, *, users: int, settle_s: float, seconds: float) -> dict[str, Any]:
    """CPU with everyone connected and nothing sent: ``settle_s``, then ``seconds`` measured."""
    await asyncio.sleep(settle_s)
    before = snapshot(pids())
    await asyncio.sleep(seconds)
    cpu = cpu_shares(before, snapshot(pids()))
    return {"users": users, "settle_s": settle_s, "seconds": seconds, "cpu": cpu, "server_share": server_share(cpu)}


# --- the issue's table ----------------------------------------------------------------------


def ms(value: float) -> str:
    """Milliseconds as the issue writes them: 0.42, 4.4, 32, 5,778."""
    if value < 1:
        return f"{value:.2f}"
    if value < 10:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def latency_cell(step: dict[str, Any], rate: float) -> str:
    lat = step["latency"]
    if not lat.get("n"):
        return "no deliveries"
    per_message = step["delivered_per_s"] / step["recipients_per_message"]
    if per_message < SUSTAINED * rate:
        return f"not sustained ({per_message:,.0f}/s, p50 {ms(lat['p50_ms'])})"
    return f"{ms(lat['p50_ms'])} / {ms(lat['p99_ms'])}"


def idle_cell(idle: dict[str, Any]) -> str:
    p = idle["cpu"].get("processes", {})
    parts = [f"{name} {p[name]['total']:.1%}" for name in SERVER_PROCESSES if name in p]
    return f"{idle['server_share']:.1%} ({', '.join(parts)})"


def variants(r: dict[str, Any]) -> list[tuple[str, str]]:
    """(result key prefix, label) of the workloads of a run: W1, W2, and W2 with a share of
    changes (issue 16: ``w2changes_*``, "W2 + 10% changes")."""
    found = [part for part in ("w2changes_saturation", "w2changes_latency") if part in r]
    changes = [("w2changes", f"W2 + {r[found[0]]['change_share']:.0%} changes")] if found else []
    return [("w1", "W1"), ("w2", "W2"), *changes]


def phases(r: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, phase) of every drained phase of a run."""
    out = []
    for prefix, name in variants(r):
        if f"{prefix}_saturation" in r:
            out.append((f"{name} saturation", r[f"{prefix}_saturation"]["phase"]))
    for prefix, name in variants(r):
        out += [(f"{name} at {step['rate']:g} msg/s", step) for step in r.get(f"{prefix}_latency", {}).get("steps", [])]
    return out


def lost_cell(r: dict[str, Any]) -> str:
    found = phases(r)
    lost = sum(p["lost"] or 0 for _, p in found)
    expected = sum(p["expected"] for _, p in found)
    failed = sum(sum(p["events"]["send_errors"].values()) for _, p in found)
    text = f"{lost:,} of {expected:,}"
    if lost:
        text += " (" + ", ".join(f"{label} {p['lost']:,}" for label, p in found if p["lost"]) + ")"
    if failed:
        text += f"; {failed:,} sends failed"
    return text


def issue_figures(r: dict[str, Any]) -> dict[str, str]:
    """One run's cells of the issue's table, by row label."""
    out: dict[str, str] = {}
    if "w1_saturation" in r:
        out["W1 saturation, msg/s"] = f"{r['w1_saturation']['phase']['delivered_per_s']:,.0f}"
    for step in r.get("w1_latency", {}).get("steps", []):
        out[f"W1 at {step['rate']:g} msg/s, p50 / p99 ms"] = latency_cell(step, step["rate"])
    for prefix, name in variants(r)[1:]:
        if f"{prefix}_saturation" in r:
            out[f"{name} saturation, deliveries/s"] = f"{r[f'{prefix}_saturation']['phase']['delivered_per_s']:,.0f}"
        for step in r.get(f"{prefix}_latency", {}).get("steps", []):
            deliveries = step["rate"] * step["recipients_per_message"]
            label = f"{name} at {step['rate']:g} msg/s ({deliveries:,.0f} del/s), p50 / p99 ms"
            out[label] = latency_cell(step, step["rate"])
    idle = r.get("w1_latency", {}).get("idle")
    if idle:
        out[f"idle, {idle['users']} users connected, all server processes, share of one core"] = idle_cell(idle)
    if phases(r):
        out["lost (expected - delivered)"] = lost_cell(r)
    return out


def issue_rows(runs: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    return comparison_rows(runs, issue_figures)


def issue_table_text(runs: list[dict[str, Any]]) -> str:
    return comparison_text([str(r["stack"]) for r in runs], issue_rows(runs))


def issue_table_markdown(runs: list[dict[str, Any]]) -> str:
    return comparison_markdown([str(r["stack"]) for r in runs], issue_rows(runs))


EJABBERD = (
    "ejabberd 23.01 on this machine (issue 12, independent generator): archive on SQLite: W1 636 msg/s, "
    "2.4 / 48 ms at 200 msg/s, W2 18,947 del/s, 4.4 / 8.8 ms at 4 msg/s; no archive: 20,015 msg/s, "
    "0.42 / 2.7 ms, 45,420 del/s, 2.2 / 9.5 ms"
)
TARGETS: dict[str, dict[str, Any]] = {
    "default up stack": {"w1": 5_000, "w1_lat": (10, 50), "w2": 25_000, "w2_lat": (10, 30), "idle": 0.05},
    "real Kafka + real Cassandra": {"w1": 1_500, "w1_lat": (15, 100), "w2": 19_000, "w2_lat": (15, 50), "idle": None},
}


def targets_of(stack: str) -> tuple[str, dict[str, Any]]:
    """The issue's target column for a stack (``embedded`` and ``kafka`` are what ``up`` picks)."""
    name = "real Kafka + real Cassandra" if stack == "kafka-cassandra" else "default up stack"
    return name, TARGETS[name]


def target_lines(r: dict[str, Any]) -> list[str]:
    """Each of the issue's targets for this run's stack: met or not, with the figure."""
    name, t = targets_of(str(r["stack"]))
    out = [f"issue 12 targets ({name} column):"]

    def check(label: str, ok: bool, value: str) -> None:
        out.append(f"  {label}: {'met' if ok else 'NOT met'} - {value}")

    for w in ("w1", "w2"):
        key, rate, unit = f"{w}_saturation", W1_RATE if w == "w1" else W2_RATE, "msg/s" if w == "w1" else "del/s"
        if key in r:
            v = r[key]["phase"]["delivered_per_s"]
            check(f"{w.upper()} saturation ≥ {t[w]:,} {unit}", v >= t[w], f"{v:,.0f}")
        step = next((s for s in r.get(f"{w}_latency", {}).get("steps", []) if s["rate"] == rate), None)
        if step is not None:
            p50, p99 = t[f"{w}_lat"]
            lat = step["latency"]
            ok = bool(lat.get("n")) and lat["p50_ms"] <= p50 and lat["p99_ms"] <= p99 and not step["lost"]
            check(f"{w.upper()} at {rate:g} msg/s, p50 / p99 ≤ {p50} / {p99} ms", ok, latency_cell(step, rate))
    idle = r.get("w1_latency", {}).get("idle")
    if idle and t["idle"] is not None:
        check(f"idle ≤ {t['idle']:.0%} of one core", idle["server_share"] <= t["idle"], idle_cell(idle))
    elif idle:
        out.append(f"  idle: recorded (the JVMs' own idle) - {idle_cell(idle)}")
    return out
