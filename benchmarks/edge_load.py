"""Building blocks of ``benchmarks.bench_edge``: processes, ``/proc`` sampling, load generation.

Everything here is independent of pytest. The load generator is one asyncio process driving
:class:`~chat_events.client.ChatClient` instances (W1, W2) or raw ``websockets`` connections
(idle connections); times come from ``time.perf_counter_ns`` of this one process, so a send
timestamp written into a message's content and the recipient's receive time share a clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

from chat_events.api.tokens import issue_token
from chat_events.cli.read_marker import ReadMarker
from chat_events.client import ChatClient, ChatClientError, ConnectionLost, GapNotRecoverable
from chat_events.client.models import TargetType

REPO_ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
CONTENT_BYTES = 65
"""Message body size (text characters): ~65 bytes carrying the send timestamp, as in issue 12's workload."""


# --- /proc ----------------------------------------------------------------------------------


def _stat_cpu_s(path: str) -> float | None:
    """utime + stime (seconds) from a ``/proc/.../stat`` file; None when unavailable."""
    try:
        with open(path, encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass(frozen=True, slots=True)
class CpuTimes:
    total_s: float
    """All threads of the process."""
    main_s: float
    """The main thread (the event loop of the Python processes)."""


def process_cpu(pid: int) -> CpuTimes | None:
    total = _stat_cpu_s(f"/proc/{pid}/stat")
    main = _stat_cpu_s(f"/proc/{pid}/task/{pid}/stat")
    if total is None:
        return None
    return CpuTimes(total, main if main is not None else total)


def machine_busy_s() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot, all cores (``/proc/stat``)."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return (total - idle) / CLK_TCK, total / CLK_TCK


def rss_kib(pid: int) -> int | None:
    """VmRSS of ``pid`` in KiB."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


@dataclass(slots=True)
class CpuSnapshot:
    wall_s: float
    processes: dict[str, CpuTimes | None]
    machine: tuple[float, float] | None


def snapshot(pids: dict[str, int | None]) -> CpuSnapshot:
    """CPU times of the named processes (``self`` = this process) and of the machine, now."""
    processes = {name: process_cpu(pid) if pid else None for name, pid in pids.items()}
    return CpuSnapshot(time.perf_counter(), processes, machine_busy_s())


def cpu_shares(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, Any]:
    """Per process: share of one core used between the snapshots (``total``, ``main`` thread);
    ``machine``: share of all cores busy (anything running on the host, other jobs included)."""
    wall = after.wall_s - before.wall_s
    out: dict[str, Any] = {"window_s": wall, "processes": {}}
    for name, end in after.processes.items():
        start = before.processes.get(name)
        if start is None or end is None or wall <= 0:
            continue
        out["processes"][name] = {
            "total": (end.total_s - start.total_s) / wall,
            "main": (end.main_s - start.main_s) / wall,
        }
    if before.machine and after.machine and after.machine[1] > before.machine[1]:
        busy = (after.machine[0] - before.machine[0]) / (after.machine[1] - before.machine[1])
        out["machine_busy"] = busy
        out["machine_busy_cores"] = busy * (os.cpu_count() or 1)
    return out


def raise_nofile(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards ``wanted`` (children inherit it); the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return int(soft)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- processes ------------------------------------------------------------------------------


class Service:
    """A ``python -m chat_events.cli.main <command>`` child in its own process group, output to a log."""

    def __init__(self, name: str, command: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.command = [sys.executable, "-m", "chat_events.cli.main", command, "--log-level", "WARNING"]
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.started = time.perf_counter()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]

    def kill(self) -> None:
        """SIGKILL the process group (figures are taken before; shutdown is not measured)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)


async def wait_log_line(service: Service, line: bytes, timeout_s: float) -> float:
    """Seconds from start until ``line`` is in the service's log (raises if it died or timed out)."""
    deadline = time.monotonic() + timeout_s
    while True:
        service.check()
        with contextlib.suppress(OSError):
            if line in service.log_path.read_bytes():
                return time.perf_counter() - service.started
        if time.monotonic() > deadline:
            raise TimeoutError(f"{service.name}: no {line.decode()!r} within {timeout_s:g} s:\n{service.log_tail()}")
        await asyncio.sleep(0.05)


async def wait_http_ready(service: Service, url: str, timeout_s: float) -> float:
    """Seconds from start until ``GET url`` answers 200."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=1.0) as http:
        while True:
            service.check()
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return time.perf_counter() - service.started
            if time.monotonic() > deadline:
                raise TimeoutError(f"{service.name}: {url} not ready within {timeout_s:g} s:\n{service.log_tail()}")
            await asyncio.sleep(0.1)


def log_problems(text: str, limit: int = 6) -> dict[str, Any]:
    """ERROR/CRITICAL lines and tracebacks in a service log, with a few distinct examples."""
    errors = [line for line in text.splitlines() if " ERROR " in line or " CRITICAL " in line]
    warnings = [line for line in text.splitlines() if " WARNING " in line]
    distinct: dict[str, str] = {}
    for line in errors:
        key = line.split(" ERROR ", 1)[-1].split(" CRITICAL ", 1)[-1][:100]
        distinct.setdefault(key, line[:300])
    warning_kinds: Counter[str] = Counter(line.split(" WARNING ", 1)[-1][:90] for line in warnings)
    return {
        "errors": len(errors),
        "tracebacks": text.count("Traceback (most recent call last)"),
        "warnings": len(warnings),
        "error_examples": list(distinct.values())[:limit],
        "warning_kinds": warning_kinds.most_common(limit),
    }


# --- messages -------------------------------------------------------------------------------

_keys = itertools.count(1)


def next_key() -> int:
    """A run-wide unique message number (message numbers of one load step form one range)."""
    return next(_keys)


def content(key: int, sent_ns: int) -> str:
    """``<key>:<perf_counter_ns at send>:`` padded to :data:`CONTENT_BYTES` characters."""
    head = f"{key}:{sent_ns}:"
    return head + "x" * max(1, CONTENT_BYTES - len(head))


def parse_content(text: str) -> tuple[int, int] | None:
    key, _, rest = text.partition(":")
    sent, _, _ = rest.partition(":")
    try:
        return int(key), int(sent)
    except ValueError:
        return None


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (as in bench_worker)."""
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return float(ordered[index])


def latency_summary(samples_ns: Iterable[int]) -> dict[str, Any]:
    ordered = sorted(samples_ns)
    if not ordered:
        return {"n": 0}
    ms = [v / 1e6 for v in ordered]
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": ms[-1],
        "mean_ms": sum(ms) / len(ms),
    }


# --- receiving ------------------------------------------------------------------------------


@dataclass(slots=True)
class Recorder:
    """Deliveries to recipients (sender != receiving user): receive time, message key, latency,
    and the receiving user's index in the pool (to tell a duplicate from another recipient)."""

    recv_ns: array[int] = field(default_factory=lambda: array("q"))
    keys: array[int] = field(default_factory=lambda: array("q"))
    latency_ns: array[int] = field(default_factory=lambda: array("q"))
    users: array[int] = field(default_factory=lambda: array("i"))
    own_copies: int = 0
    """Deliveries of a user's own messages (the sender's inbox copy): not counted."""
    unparsed: int = 0

    def add(self, now_ns: int, key: int, sent_ns: int, user: int = 0) -> None:
        self.recv_ns.append(now_ns)
        self.keys.append(key)
        self.latency_ns.append(now_ns - sent_ns)
        self.users.append(user)

    def count_between(self, start_ns: int, end_ns: int) -> int:
        return sum(1 for t in self.recv_ns if start_ns <= t < end_ns)

    def in_range(self, first_key: int, last_key: int) -> tuple[list[int], Counter[int], int]:
        """Latencies, per-key delivery counts and the last receive time of the messages
        numbered first_key..last_key."""
        latencies: list[int] = []
        counts: Counter[int] = Counter()
        last_ns = 0
        for key, latency, t in zip(self.keys, self.latency_ns, self.recv_ns, strict=True):
            if first_key <= key <= last_key:
                latencies.append(latency)
                counts[key] += 1
                last_ns = max(last_ns, t)
        return latencies, counts, last_ns

    def delivered_in_range(self, first_key: int, last_key: int) -> int:
        return sum(1 for key in self.keys if first_key <= key <= last_key)


@dataclass(slots=True)
class ClientEvents:
    """What happened to the clients' connections besides deliveries (closes, gaps)."""

    closed: Counter[str] = field(default_factory=Counter)
    gaps: int = 0
    receive_errors: Counter[str] = field(default_factory=Counter)


class ClientPool:
    """One :class:`ChatClient` per user, each with a receive loop feeding ``recorder``.

    The clients behave like real ones: heartbeats at the interval the edge announces, every
    delivery acked, coalesced (``ack_interval_s``/``ack_every``: at most one ``ack`` per socket
    per interval, sooner once that many deliveries are unacked), and a send waits for its answer."""

    def __init__(
        self,
        http_url: str,
        secret: str,
        *,
        device_id: str = "bench",
        ack_interval_s: float = 0.2,
        ack_every: int = 50,
    ) -> None:
        self.http_url = http_url
        self.secret = secret
        self.device_id = device_id
        self.ack_interval_s = ack_interval_s
        self.ack_every = ack_every
        self.clients: dict[str, ChatClient] = {}
        self.index: dict[str, int] = {}
        """Each user's number in the pool (the order ``connect`` was given), as :class:`Recorder` stores it."""
        self.recorder = Recorder()
        self.events = ClientEvents()
        self.on_delivery: Callable[[int], None] | None = None
        """Called with the message key of every delivery to a recipient (delivery-gated load)."""
        self.observer: Observer | None = None
        """Sees every delivery first (receiving user, their pool index, the message, receive time);
        True = it handled the delivery (a change entry), which is then not parsed as a keyed message."""
        self.read_interval_s: float | None = None
        """Set: every delivery is also read (an app in the foreground), coalesced per conversation
        to one ``read`` at most per this interval (the terminal chat's :class:`ReadMarker`)."""
        self._readers: dict[tuple[str, str], ReadMarker] = {}
        self._loops: list[asyncio.Task[None]] = []

    def token(self, user: str) -> str:
        return issue_token(user, self.secret, ttl_s=3600)[0]

    async def connect(self, users: Sequence[str], *, parallel: int = 25) -> float:
        """Connect and sign in every user (``parallel`` at a time); seconds taken."""
        started = time.perf_counter()
        gate = asyncio.Semaphore(parallel)
        for user in users:
            self.index.setdefault(user, len(self.index))

        async def one(user: str) -> None:
            async with gate:
                client = ChatClient(
                    self.http_url,
                    token=self.token(user),
                    device_id=self.device_id,
                    heartbeat=True,
                    ack_interval_s=self.ack_interval_s,
                    ack_every=self.ack_every,
                )
                await client.connect()
                self.clients[user] = client
                self._loops.append(asyncio.create_task(self._receive_loop(user, client), name=f"recv-{user}"))

        await asyncio.gather(*(one(u) for u in users))
        return time.perf_counter() - started

    async def _receive_loop(self, user: str, client: ChatClient) -> None:
        index = self.index[user]
        while True:
            try:
                delivery = await client.receive()
            except GapNotRecoverable:
                self.events.gaps += 1
                continue
            except ConnectionLost as exc:
                self.events.closed[f"{exc.close_code} {exc.reason}".strip()] += 1
                return
            except ChatClientError as exc:
                self.events.receive_errors[type(exc).__name__] += 1
                return
            now = time.perf_counter_ns()
            recorder = self.recorder
            message = delivery.message
            if self.observer is not None and self.observer(user, index, message, now):
                continue
            if message.get("sender_id") == user:
                recorder.own_copies += 1
                continue
            parsed = parse_content(str(message.get("content", "")))
            if parsed is None:
                recorder.unparsed += 1
                continue
            recorder.add(now, parsed[0], parsed[1], index)
            if self.on_delivery is not None:
                self.on_delivery(parsed[0])
            if self.read_interval_s is not None:
                key = (user, str(message["conversation_id"]))
                reader = self._readers.get(key)
                if reader is None:
                    reader = self._readers[key] = ReadMarker(client, key[1], self.read_interval_s)
                reader.shown(message)

    async def close(self) -> None:
        for reader in self._readers.values():
            await reader.close()
        for task in self._loops:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                asyncio.gather(*(c.close() for c in self.clients.values()), return_exceptions=True), 15
            )
        self.clients.clear()


# --- sending --------------------------------------------------------------------------------


@dataclass(slots=True)
class SendStats:
    """Sends acknowledged by the edge (= by Kafka): completion times, send→ACK latencies, message keys."""

    acked_ns: array[int] = field(default_factory=lambda: array("q"))
    ack_latency_ns: array[int] = field(default_factory=lambda: array("q"))
    acked_keys: array[int] = field(default_factory=lambda: array("q"))
    errors: Counter[str] = field(default_factory=Counter)
    issued: int = 0

    def count_between(self, start_ns: int, end_ns: int) -> int:
        return sum(1 for t in self.acked_ns if start_ns <= t < end_ns)


Observer = Callable[[str, int, dict[str, Any], int], bool]
"""``(user, user index, message, receive ns) -> handled``: see :attr:`ClientPool.observer`."""


class SendFn(Protocol):
    """One keyed send on a route, counted in ``stats``; False if it failed (:func:`send_one`)."""

    def __call__(
        self, client: ChatClient, target_type: TargetType, target: str, key: int, stats: SendStats, *, timeout_s: float
    ) -> Coroutine[Any, Any, bool]: ...


def _error_name(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    return f"{type(exc).__name__}({code})" if code is not None else type(exc).__name__


async def send_one(
    client: ChatClient, target_type: TargetType, target: str, key: int, stats: SendStats, *, timeout_s: float
) -> bool:
    """One send, the content stamped just before ``send()``; False if it failed."""
    sent_ns = time.perf_counter_ns()
    stats.issued += 1
    try:
        await client.send(target_type, target, content(key, sent_ns), retries=0, timeout=timeout_s)
    except (ChatClientError, TimeoutError) as exc:
        stats.errors[_error_name(exc)] += 1
        return False
    done = time.perf_counter_ns()
    stats.acked_ns.append(done)
    stats.ack_latency_ns.append(done - sent_ns)
    stats.acked_keys.append(key)
    return True


async def saturate(
    routes: Sequence[tuple[ChatClient, TargetType, str]],
    window: int,
    seconds: float,
    stats: SendStats,
    *,
    timeout_s: float = 30.0,
) -> tuple[int, int]:
    """Closed loop per route: ``window`` sends outstanding each, as fast as ACKs come back, for
    ``seconds``. Returns the first and last message key used."""
    first = next_key()
    deadline = time.perf_counter() + seconds

    async def pump(client: ChatClient, target_type: TargetType, target: str) -> None:
        while time.perf_counter() < deadline:
            if not await send_one(client, target_type, target, next_key(), stats, timeout_s=timeout_s):
                if not client.connected:
                    return
                await asyncio.sleep(0.05)

    await asyncio.gather(*(pump(c, t, target) for c, t, target in routes for _ in range(window)))
    return first, next_key()


async def saturate_delivered(
    pool: ClientPool,
    routes: Sequence[tuple[ChatClient, TargetType, str]],
    window: int,
    seconds: float,
    stats: SendStats,
    recipients: int,
    *,
    timeout_s: float = 30.0,
    send: SendFn | None = None,
) -> tuple[int, int]:
    """Closed loop on delivery: each route keeps ``window`` messages in flight *until every
    recipient received them* (not just until the ACK), so no backlog builds up beyond
    ``window`` x routes messages. ``send`` replaces :func:`send_one` (e.g. a mix of sends and
    changes). Returns the first and last message key used."""
    send_fn: SendFn = send or send_one
    first = next_key()
    deadline = time.perf_counter() + seconds
    in_flight: dict[int, tuple[int, asyncio.Semaphore]] = {}

    def delivered(key: int) -> None:
        entry = in_flight.get(key)
        if entry is None:
            return
        left, gate = entry
        if left <= 1:
            del in_flight[key]
            gate.release()
        else:
            in_flight[key] = (left - 1, gate)

    async def one(client: ChatClient, target_type: TargetType, target: str, key: int, gate: asyncio.Semaphore) -> None:
        ok = await send_fn(client, target_type, target, key, stats, timeout_s=timeout_s)
        if not ok and in_flight.pop(key, None) is not None:
            gate.release()  # failed: it will never be delivered

    async def route(client: ChatClient, target_type: TargetType, target: str) -> None:
        gate = asyncio.Semaphore(window)
        tasks: set[asyncio.Task[None]] = set()
        while (left := deadline - time.perf_counter()) > 0:
            try:
                await asyncio.wait_for(gate.acquire(), left)
            except TimeoutError:
                break
            key = next_key()
            in_flight[key] = (recipients, gate)
            task = asyncio.create_task(one(client, target_type, target, key, gate))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)

    pool.on_delivery = delivered
    try:
        await asyncio.gather(*(route(c, t, target) for c, t, target in routes))
    finally:
        pool.on_delivery = None
    return first, next_key()


async def paced(
    routes: Sequence[tuple[ChatClient, TargetType, str]],
    rate_per_s: float,
    seconds: float,
    stats: SendStats,
    *,
    timeout_s: float = 30.0,
    send: SendFn | None = None,
) -> dict[str, Any]:
    """Open loop: message i is sent at start + i/rate (round-robin over ``routes``), never
    waiting for ACKs (``send`` replaces :func:`send_one`). Returns the key range and the
    offered rate actually achieved."""
    send_fn: SendFn = send or send_one
    total = max(1, round(rate_per_s * seconds))
    pending: set[asyncio.Task[bool]] = set()
    keys: list[int] = []
    start_ns = time.perf_counter_ns()
    start = time.perf_counter()
    i = 0
    while i < total:
        due = min(total, int((time.perf_counter() - start) * rate_per_s) + 1)
        while i < due:
            client, target_type, target = routes[i % len(routes)]
            key = next_key()
            keys.append(key)
            task = asyncio.create_task(send_fn(client, target_type, target, key, stats, timeout_s=timeout_s))
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
        delay = start + i / rate_per_s - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    elapsed = time.perf_counter() - start
    if pending:
        await asyncio.wait(pending, timeout=timeout_s + 5)
    return {
        "first_key": keys[0],
        "last_key": keys[-1],
        "messages": total,
        "offered_per_s": total / elapsed if elapsed > 0 else float("nan"),
        "start_ns": start_ns,
    }


async def wait_deliveries(
    recorder: Callable[[], Recorder], first_key: int, last_key: int, expected: int, timeout_s: float
) -> tuple[int, float]:
    """Wait until ``expected`` deliveries of keys first..last arrived (or ``timeout_s``); (count, waited s)."""
    started = time.perf_counter()
    deadline = started + timeout_s
    count = 0
    while time.perf_counter() < deadline:
        count = recorder().delivered_in_range(first_key, last_key)
        if count >= expected:
            break
        await asyncio.sleep(0.2)
    return count, time.perf_counter() - started


# --- idle connections -----------------------------------------------------------------------


@dataclass(slots=True)
class IdleConnections:
    sockets: list[ClientConnection] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    compressed: int = 0
    """Signed-in sockets on which the edge accepted permessage-deflate."""

    def still_open(self) -> int:
        return sum(1 for ws in self.sockets if ws.close_code is None)

    def abort(self) -> None:
        for ws in self.sockets:
            with contextlib.suppress(Exception):
                ws.transport.abort()
        self.sockets.clear()


async def open_idle(
    ws_url: str,
    tokens: Sequence[str],
    *,
    batch: int,
    device_id: str = "idle",
    compression: str | None = "deflate",
    timeout_s: float = 30.0,
    progress: Callable[[int, int], None] | None = None,
) -> IdleConnections:
    """Open one signed-in socket per token (header sign-in), ``batch`` at a time; keep them open.

    ``compression`` "deflate" offers permessage-deflate, as :class:`ChatClient` and browsers do
    (the edge accepts it only with ``CHAT_WS_PER_MESSAGE_DEFLATE=true``); None offers nothing."""
    result = IdleConnections()
    started = time.perf_counter()

    async def one(token: str) -> None:
        headers = {"Authorization": f"Bearer {token}", "X-Device-Id": device_id}
        try:
            ws = await connect(
                ws_url,
                additional_headers=headers,
                open_timeout=timeout_s,
                ping_interval=None,
                compression=compression,
            )
        except Exception as exc:
            result.failures[f"connect: {type(exc).__name__}"] += 1
            return
        try:
            frame = orjson.loads(await asyncio.wait_for(ws.recv(), timeout_s))
        except Exception as exc:
            result.failures[f"sign-in reply: {type(exc).__name__} {ws.close_code or ''}".strip()] += 1
            ws.transport.abort()
            return
        if frame.get("type") == "sign_in" and frame.get("code") == 0:
            result.sockets.append(ws)
            result.compressed += bool(ws.protocol.extensions)
        else:
            result.failures[f"sign-in refused: code {frame.get('code')}"] += 1
            ws.transport.abort()

    for i in range(0, len(tokens), batch):
        await asyncio.gather(*(one(t) for t in tokens[i : i + batch]))
        if progress is not None:
            progress(len(result.sockets), i + len(tokens[i : i + batch]))
    result.seconds = time.perf_counter() - started
    return result


# --- py-spy ---------------------------------------------------------------------------------


def py_spy_binary() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


class PySpy:
    """``py-spy record --format raw`` on one process for a fixed duration (non-blocking sampling)."""

    def __init__(self, binary: str, pid: int, out: Path, *, seconds: float, rate: int) -> None:
        command = [binary, "record", "--pid", str(pid), "--format", "raw", "--threads", "--nolineno"]
        command += ["--nonblocking", "--full-filenames", "--rate", str(rate), "--duration", str(max(1, round(seconds)))]
        command += ["--output", str(out)]
        self.out = out
        self.log_path = out.with_suffix(".log")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )

    async def wait(self, timeout_s: float) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(self.proc.wait, timeout_s)
        self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def problem(self) -> str | None:
        if self.out.exists() and self.out.stat().st_size > 0:
            return None
        try:
            return self.log_path.read_text(errors="replace")[-1000:] or "py-spy wrote nothing"
        except OSError:
            return "py-spy wrote nothing"


AREAS = (
    ("chat_events/api/", "edge: chat_events.api (sessions, handlers, delivery)"),
    ("chat_events/codec/", "Avro codec (chat_events.codec + fastavro)"),
    ("fastavro/", "Avro codec (chat_events.codec + fastavro)"),
    ("chat_events/events/", "envelopes & validation (chat_events.events)"),
    ("chat_events/producers/", "publisher (chat_events.producers)"),
    ("chat_events/store/", "store (chat_events.store, SQLite)"),
    ("sqlite3", "store (chat_events.store, SQLite)"),
    ("chat_events/streams/", "worker stage logic (chat_events.streams)"),
    ("chat_events/", "other chat_events"),
    ("aiokafka/", "aiokafka (fetch, record parsing, send)"),
    ("kafka/", "aiokafka (fetch, record parsing, send)"),
    ("uvicorn/", "uvicorn + websockets (HTTP/WebSocket protocol, framing)"),
    ("websockets/", "uvicorn + websockets (HTTP/WebSocket protocol, framing)"),
    ("starlette/", "starlette / FastAPI"),
    ("fastapi/", "starlette / FastAPI"),
    ("faust/", "Faust / mode"),
    ("mode/", "Faust / mode"),
    ("asyncio/", "asyncio (tasks, futures, queues, streams)"),
    ("uvloop", "asyncio (tasks, futures, queues, streams)"),
    ("pydantic", "pydantic"),
    ("uuid.py", "uuid / datetime / json (ids, timestamps)"),
    ("datetime", "uuid / datetime / json (ids, timestamps)"),
    ("json/", "uuid / datetime / json (ids, timestamps)"),
    ("concurrent/futures", "thread hand-off (executor, queues)"),
    ("threading.py", "thread hand-off (executor, queues)"),
    ("queue.py", "thread hand-off (executor, queues)"),
)
IDLE_LEAVES = (
    ("selectors.py", "select"),  # the stdlib event loop waiting in epoll
    ("concurrent/futures/thread.py", "_worker"),  # an executor thread waiting for work
    ("threading.py", "wait"),
    ("queue.py", "get"),
    ("asyncio/runners.py", "run"),  # uvloop: the loop waits in C, the last Python frame is run()
    ("asyncio/base_events.py", "run_until_complete"),
    ("asyncio/base_events.py", "run_forever"),
)
PLUMBING = (
    "asyncio/runners.py",
    "asyncio/base_events.py",
    "asyncio/events.py",
    "runpy",
    "chat_events/cli/",
    "threading.py",
    "concurrent/futures/thread.py",
    "selectors.py",
    "uvicorn/server.py",
    "uvicorn/main.py",
    "uvicorn/_compat.py",
    "uvicorn/middleware/",
    "fastapi/",
    "starlette/applications.py",
    "starlette/routing.py",
    "starlette/_exception_handler.py",
    "starlette/middleware/",
    "mode/threads.py",
)


def area_of(filename: str) -> str:
    path = filename.replace("\\", "/")
    for marker, area in AREAS:
        if marker in path:
            return area
    return "other Python (stdlib, ...)"


def short_name(func: str, filename: str) -> str:
    path = filename.replace("\\", "/")
    for root in ("site-packages/", str(REPO_ROOT) + "/", "/lib/python3"):
        if root in path:
            path = path.split(root, 1)[1]
            break
    if path[:2].replace(".", "").isdigit():  # /lib/python3.11/asyncio/x.py -> asyncio/x.py
        path = path.split("/", 1)[-1]
    return f"{path}({func})"


def py_spy_summary(path: Path, top: int) -> dict[str, Any]:
    """Samples per thread, busy samples by area (own time of the leaf), top functions by own
    and by on-stack samples. Samples whose leaf is a wait (epoll, a queue, uvloop's run) are
    idle; py-spy itself drops some idle samples and not others in this VM, so the share of idle
    samples says little: take busy time from /proc, the split of the busy samples from here."""
    threads: dict[str, dict[str, int]] = defaultdict(lambda: {"samples": 0, "idle": 0})
    areas: Counter[str] = Counter()
    own: Counter[str] = Counter()
    on_stack: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = next((f for f in frames[:2] if f.startswith("thread ")), "thread ?")
        name = thread.split(": ", 1)[-1].strip('"')
        kind = "event loop" if name == "MainThread" else name
        calls = [_parse_frame(f) for f in frames if not f.startswith(("thread ", "process "))]
        threads[kind]["samples"] += count
        if not calls:
            threads[kind]["idle"] += count
            continue
        func, filename = calls[-1]
        if any(marker in filename and func.rsplit(".", 1)[-1] == fn for marker, fn in IDLE_LEAVES):
            threads[kind]["idle"] += count
            continue
        areas[area_of(filename)] += count
        own[short_name(func, filename)] += count
        seen: set[str] = set()
        for func_name, file_name in calls:
            label = short_name(func_name, file_name)
            plumbing = func_name.endswith("run_asgi") or any(marker in file_name for marker in PLUMBING)
            if label not in seen and not plumbing:
                seen.add(label)
                on_stack[label] += count
    busy = sum(t["samples"] - t["idle"] for t in threads.values())
    return {
        "busy_samples": busy,
        "threads": {k: dict(v) for k, v in sorted(threads.items(), key=lambda kv: -kv[1]["samples"])},
        "areas": dict(areas.most_common()),
        "top_own": own.most_common(top),
        "top_on_stack": on_stack.most_common(top),
    }


def _parse_frame(frame: str) -> tuple[str, str]:
    """``func (file)`` -> (func, file)."""
    name, _, rest = frame.rpartition(" (")
    return (name or frame), rest.rstrip(")")
