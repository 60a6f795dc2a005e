"""Producer throughput and latency: chat-events' EventPublisher against raw aiokafka.

Run from the repository root::

    python -m benchmarks.bench_producer [--n 50000] [--rounds 3] [--json PATH] [--markdown]

Broker: the embedded one (Tansu, memory-only, no idempotent producer) started for this run, or
an external cluster when ``CHAT_KAFKA_BOOTSTRAP_SERVERS`` is set (then the idempotence setting
is honoured: ``auto`` = on). Every run creates its own topics under a unique ``topic_prefix``.

Both sides use the same producer configuration (``build_producer``: acks=all, same linger,
batch size and compression), the same topic, the same keys and values of the same size. The
envelopes are built before any timing starts; chat-events' timed path includes validation and
encoding (that is what it adds), the raw producer sends the pre-encoded bytes.

Throughput variants, run in a rotated order in every round (best and median reported):

* ``publish_many``: ``EventPublisher.publish_many`` in chunks of ``--chunk`` envelopes;
* ``publish concurrent``: single ``publish()`` calls, ``--concurrency`` in flight;
* ``raw chunked``: ``producer.send()`` for a chunk, then gather its futures (the baseline);
* ``raw concurrent``: ``send_and_wait`` with ``--concurrency`` in flight (the like-for-like
  reference for ``publish concurrent``).

Latency: ``--latency-n`` single ``publish()`` / ``send_and_wait`` calls, one at a time,
interleaved in slices across the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiokafka
import fastavro
from aiokafka import AIOKafkaProducer

from benchmarks.bench_codec import make_envelope
from benchmarks.report import emit
from chat_events.codec.factory import build_codec
from chat_events.events import Envelope
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.kafka.embedded import EmbeddedBroker
from chat_events.producers import EventPublisher
from chat_events.producers.kafka_producer import build_producer, start_producer
from chat_events.settings import Settings
from chat_events.topics import TopicCatalog, key_of

PRODUCER_AIM_RATIO = 0.8
"""The aim: chat-events publishes at least this fraction of raw aiokafka's throughput."""

PUBLISH_MANY = "publish_many"
PUBLISH_CONCURRENT = "publish concurrent"
RAW_CHUNKED = "raw chunked"
RAW_CONCURRENT = "raw concurrent"
VARIANTS = (PUBLISH_MANY, PUBLISH_CONCURRENT, RAW_CHUNKED, RAW_CONCURRENT)


@dataclass(frozen=True, slots=True)
class Workload:
    """Everything sent, built before timing: envelopes and, for the raw producer, their bytes."""

    envelopes: list[Envelope]
    topic: str
    keys: list[bytes]
    values: list[bytes]


@dataclass(slots=True)
class Measurement:
    """One timed variant in one round."""

    acked: int
    wall_s: float
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.acked / self.wall_s


@dataclass(slots=True)
class Results:
    throughput: dict[str, list[Measurement]] = field(default_factory=lambda: {v: [] for v in VARIANTS})
    orders: list[list[str]] = field(default_factory=list)
    encode_us: list[float] = field(default_factory=list)
    latency_ms: dict[str, list[float]] = field(default_factory=lambda: {"chat-events": [], "raw": []})


def build_workload(settings: Settings, n: int, users: int, seed: int) -> Workload:
    """``n`` personalChatSent envelopes between ``users`` users (random pairs), pre-encoded."""
    rng = random.Random(seed)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(users)]
    envelopes = []
    for _ in range(n):
        sender, target = rng.sample(ids, 2)
        envelopes.append(make_envelope(sender, target))
    codec = build_codec(settings)
    topic = TopicCatalog(settings).for_event(envelopes[0].name).name
    return Workload(envelopes, topic, [key_of(e) for e in envelopes], [codec.encode(e) for e in envelopes])


def chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(start + size, n)


async def run_publish_many(publisher: EventPublisher, work: Workload, chunk: int) -> int:
    acked = 0
    envelopes = work.envelopes
    for start, end in chunks(len(envelopes), chunk):
        acked += len(await publisher.publish_many(envelopes[start:end]))
    return acked


async def run_publish_concurrent(publisher: EventPublisher, work: Workload, concurrency: int) -> int:
    pending = iter(work.envelopes)
    acked = 0

    async def worker() -> None:
        nonlocal acked
        for envelope in pending:  # one shared iterator: `concurrency` publishes in flight
            await publisher.publish(envelope)
            acked += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return acked


async def run_raw_chunked(producer: AIOKafkaProducer, work: Workload, chunk: int) -> int:
    acked = 0
    topic, keys, values = work.topic, work.keys, work.values
    for start, end in chunks(len(values), chunk):
        futures = [await producer.send(topic, values[i], key=keys[i]) for i in range(start, end)]
        acked += len(await asyncio.gather(*futures))
    return acked


async def run_raw_concurrent(producer: AIOKafkaProducer, work: Workload, concurrency: int) -> int:
    pending = iter(range(len(work.values)))
    topic, keys, values = work.topic, work.keys, work.values
    acked = 0

    async def worker() -> None:
        nonlocal acked
        for i in pending:
            await producer.send_and_wait(topic, values[i], key=keys[i])
            acked += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return acked


async def timed(body: Callable[[], Awaitable[int]]) -> Measurement:
    gc.collect()
    await asyncio.sleep(0.2)  # let the previous variant's tail drain on the broker
    cpu, start = time.process_time(), time.perf_counter()
    acked = await body()
    return Measurement(acked, time.perf_counter() - start, time.process_time() - cpu)


def encode_cost_us(settings: Settings, work: Workload) -> float:
    """µs per envelope of what publish adds before aiokafka (validate + encode + key), timed in a
    tight loop over the same envelopes."""
    codec = build_codec(settings)
    encode = codec.encode
    gc.collect()
    start = time.perf_counter()
    for envelope in work.envelopes:
        encode(envelope)
        key_of(envelope)
    return (time.perf_counter() - start) / len(work.envelopes) * 1e6


async def latencies(
    publisher: EventPublisher, producer: AIOKafkaProducer, work: Workload, count: int, offset: int, order: list[str]
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"chat-events": [], "raw": []}
    indices = [(offset + i) % len(work.envelopes) for i in range(count)]
    for side in order:
        gc.collect()
        await asyncio.sleep(0.1)
        samples = out[side]
        for i in indices:
            if side == "chat-events":
                start = time.perf_counter()
                await publisher.publish(work.envelopes[i])
            else:
                start = time.perf_counter()
                await producer.send_and_wait(work.topic, work.values[i], key=work.keys[i])
            samples.append((time.perf_counter() - start) * 1e3)
    return out


async def measure(settings: Settings, target: KafkaTarget, args: argparse.Namespace) -> tuple[Results, Workload]:
    statuses = await ensure_topics(settings, target)
    if any(s.status == "partition-mismatch" for s in statuses):
        raise SystemExit(f"topic setup failed: {statuses}")
    print(f"building {args.n:,} envelopes ...", file=sys.stderr, flush=True)
    work = build_workload(settings, args.n, args.users, args.seed)
    gc.collect()
    gc.freeze()  # the pre-built workload is never garbage: keep it out of every collection
    results = Results()
    publisher = EventPublisher(settings, target, build_codec(settings))
    producer = build_producer(settings, target)
    await publisher.start()
    try:
        await start_producer(producer, settings, target)
        # warm up both: connections, metadata, partition leaders, first batches
        warm = Workload(work.envelopes[:2_000], work.topic, work.keys[:2_000], work.values[:2_000])
        await run_publish_many(publisher, warm, args.chunk)
        await run_raw_chunked(producer, warm, args.chunk)
        bodies: dict[str, Callable[[], Awaitable[int]]] = {
            PUBLISH_MANY: lambda: run_publish_many(publisher, work, args.chunk),
            PUBLISH_CONCURRENT: lambda: run_publish_concurrent(publisher, work, args.concurrency),
            RAW_CHUNKED: lambda: run_raw_chunked(producer, work, args.chunk),
            RAW_CONCURRENT: lambda: run_raw_concurrent(producer, work, args.concurrency),
        }
        offset = 0
        for round_no in range(args.rounds):
            # abcd, dcba, cdab, badc, ...: every variant runs early and late
            shift = 2 * (round_no // 2) % len(VARIANTS)
            order = list(VARIANTS[shift:] + VARIANTS[:shift])
            if round_no % 2:
                order.reverse()
            results.orders.append(order)
            for variant in order:
                m = await timed(bodies[variant])
                if m.acked != args.n:
                    raise SystemExit(f"{variant}: only {m.acked} of {args.n} acknowledged")
                results.throughput[variant].append(m)
                print(
                    f"  round {round_no + 1} {variant:<20} {m.rate:>10,.0f} acked/s  (cpu {m.cpu_s / m.wall_s:.0%})",
                    file=sys.stderr,
                    flush=True,
                )
            results.encode_us.append(encode_cost_us(settings, work))
            sides = ["chat-events", "raw"] if round_no % 2 == 0 else ["raw", "chat-events"]
            count = args.latency_n // args.rounds + (round_no < args.latency_n % args.rounds)
            lat = await latencies(publisher, producer, work, count, offset, sides)
            offset += count
            for side, samples in lat.items():
                results.latency_ms[side].extend(samples)
    finally:
        await producer.stop()
        await publisher.stop()
    return results, work


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summarise(
    results: Results, work: Workload, settings: Settings, target: KafkaTarget, args: argparse.Namespace
) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    for variant, ms in results.throughput.items():
        rates = [m.rate for m in ms]
        rows[variant] = {
            "best": max(rates),
            "median": statistics.median(rates),
            "rounds": rates,
            "client_cpu_us_per_envelope": statistics.median(m.cpu_s / m.acked * 1e6 for m in ms),
            "client_cpu_share": statistics.median(m.cpu_s / m.wall_s for m in ms),
        }
    raw = rows[RAW_CHUNKED]

    def ratio(name: str, base: dict[str, Any]) -> dict[str, float]:
        return {"best": rows[name]["best"] / base["best"], "median": rows[name]["median"] / base["median"]}

    ratios = {
        "publish_many/raw_chunked": ratio(PUBLISH_MANY, raw),
        "publish_concurrent/raw_chunked": ratio(PUBLISH_CONCURRENT, raw),
        "publish_concurrent/raw_concurrent": ratio(PUBLISH_CONCURRENT, rows[RAW_CONCURRENT]),
    }
    latency = {
        side: {
            "n": len(s),
            "p50_ms": percentile(s, 50),
            "p99_ms": percentile(s, 99),
            "mean_ms": statistics.fmean(s),
            "max_ms": max(s),
        }
        for side, s in results.latency_ms.items()
    }
    encode_us = statistics.median(results.encode_us)
    many, concurrent, raw_concurrent = rows[PUBLISH_MANY], rows[PUBLISH_CONCURRENT], rows[RAW_CONCURRENT]
    per_envelope: dict[str, float] = {
        "encode_us": encode_us,
        "publish_many_wall_us": 1e6 / many["median"],
        "raw_chunked_wall_us": 1e6 / raw["median"],
        "publish_many_cpu_us": many["client_cpu_us_per_envelope"],
        "raw_chunked_cpu_us": raw["client_cpu_us_per_envelope"],
        "publish_concurrent_cpu_us": concurrent["client_cpu_us_per_envelope"],
        "raw_concurrent_cpu_us": raw_concurrent["client_cpu_us_per_envelope"],
    }
    per_envelope["encode_share_of_publish_many_cpu"] = encode_us / per_envelope["publish_many_cpu_us"]
    per_envelope["aiokafka_share_of_publish_many_cpu"] = (
        per_envelope["raw_chunked_cpu_us"] / per_envelope["publish_many_cpu_us"]
    )
    per_envelope["publish_concurrent_extra_cpu_us"] = (
        per_envelope["publish_concurrent_cpu_us"] - per_envelope["raw_concurrent_cpu_us"]
    )
    return {
        "benchmark": "producer",
        "environment": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "aiokafka": aiokafka.__version__,
            "fastavro": fastavro.__version__,
            "broker": "embedded Tansu (memory-only, no idempotence)" if target.embedded else target.bootstrap_servers,
            "idempotence": target.idempotence(settings),
            "acks": "all",
            "linger_ms": settings.kafka_linger_ms,
            "max_batch_bytes": settings.kafka_max_batch_bytes,
            "compression": settings.kafka_compression,
            "partitions": settings.topic_partitions,
        },
        "n": args.n,
        "chunk": args.chunk,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "orders": results.orders,
        "value_bytes": statistics.fmean(len(v) for v in work.values),
        "distinct_keys": len(set(work.keys)),
        "throughput": rows,
        "ratios": ratios,
        "aim_ratio": PRODUCER_AIM_RATIO,
        "latency": latency,
        "per_envelope_us": per_envelope,
    }


def format_text(r: dict[str, Any]) -> str:
    env = r["environment"]
    lines = [
        f"chat-events producer benchmark  {env['date']}  python {env['python']}  aiokafka {env['aiokafka']}  "
        f"fastavro {env['fastavro']}  cpus {env['cpus']}",
        f"broker: {env['broker']}; acks={env['acks']} idempotence={env['idempotence']} linger_ms={env['linger_ms']} "
        f"max_batch_bytes={env['max_batch_bytes']} compression={env['compression']} partitions={env['partitions']}",
        f"n = {r['n']:,} envelopes per variant and round ({r['value_bytes']:.0f} B values, "
        f"{r['distinct_keys']:,} keys), chunk {r['chunk']}, concurrency {r['concurrency']}, {r['rounds']} rounds",
        "",
        f"{'variant':<22}{'best/s':>10}{'median/s':>10}{'vs raw':>8}{'cpu us/env':>12}{'cpu busy':>10}",
        "-" * 72,
    ]
    raw_median = r["throughput"][RAW_CHUNKED]["median"]
    for name, row in r["throughput"].items():
        lines.append(
            f"{name:<22}{row['best']:>10,.0f}{row['median']:>10,.0f}{row['median'] / raw_median:>8.2f}"
            f"{row['client_cpu_us_per_envelope']:>12.1f}{row['client_cpu_share']:>10.0%}"
        )
    lines.append("")
    for name, value in r["ratios"].items():
        met = "met" if value["median"] >= r["aim_ratio"] else "NOT met"
        lines.append(
            f"{name:<36} best {value['best']:.2f}  median {value['median']:.2f}  (aim {r['aim_ratio']}: {met})"
        )
    lines += ["", f"{'sequential latency':<22}{'n':>6}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'max ms':>9}"]
    for side, lat in r["latency"].items():
        label = "publish()" if side == "chat-events" else "raw send_and_wait"
        lines.append(
            f"{label:<22}{lat['n']:>6}{lat['p50_ms']:>9.2f}{lat['p99_ms']:>9.2f}{lat['mean_ms']:>9.2f}{lat['max_ms']:>9.2f}"
        )
    pe = r["per_envelope_us"]
    other = pe["publish_many_cpu_us"] - pe["encode_us"] - pe["raw_chunked_cpu_us"]
    lines += [
        "",
        f"client CPU per envelope, publish_many: {pe['publish_many_cpu_us']:.1f} us = validate+encode+key "
        f"{pe['encode_us']:.1f} us ({pe['encode_share_of_publish_many_cpu']:.0%}, tight-loop figure) "
        f"+ aiokafka send path {pe['raw_chunked_cpu_us']:.1f} us ({pe['aiokafka_share_of_publish_many_cpu']:.0%}, "
        f"raw chunked) + other {other:.1f} us",
        f"client CPU per envelope, publish concurrent: {pe['publish_concurrent_cpu_us']:.1f} us vs raw concurrent "
        f"{pe['raw_concurrent_cpu_us']:.1f} us: +{pe['publish_concurrent_extra_cpu_us']:.1f} us "
        f"(encoding ~{pe['encode_us']:.1f} us of it)",
    ]
    return "\n".join(lines)


def format_markdown(r: dict[str, Any]) -> str:
    raw_median = r["throughput"][RAW_CHUNKED]["median"]
    lines = [
        "| variant | best acked/s | median acked/s | median vs raw chunked | client CPU µs/envelope |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in r["throughput"].items():
        lines.append(
            f"| {name} | {row['best']:,.0f} | {row['median']:,.0f} | {row['median'] / raw_median:.2f} "
            f"| {row['client_cpu_us_per_envelope']:.1f} |"
        )
    lines += ["", "| sequential latency | n | p50 ms | p99 ms | mean ms |", "|---|---:|---:|---:|---:|"]
    for side, lat in r["latency"].items():
        label = "`publish()`" if side == "chat-events" else "raw `send_and_wait`"
        lines.append(f"| {label} | {lat['n']} | {lat['p50_ms']:.2f} | {lat['p99_ms']:.2f} | {lat['mean_ms']:.2f} |")
    return "\n".join(lines)


def make_settings(bootstrap: str, embedded: bool) -> Settings:
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": bootstrap,
        "topic_prefix": f"bench{uuid.uuid4().hex[:10]}.",
        "kafka_send_timeout_s": 60.0,
    }
    if embedded:
        values["kafka_idempotence"] = "off"  # Tansu does not implement InitProducerId
    return Settings(**values)  # an external cluster: CHAT_KAFKA_IDEMPOTENCE etc. are honoured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_producer", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50_000, help="envelopes per variant and round (default 50000)")
    parser.add_argument("--chunk", type=int, default=1_000, help="envelopes per publish_many / raw gather")
    parser.add_argument("--concurrency", type=int, default=200, help="single publishes in flight")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-n", type=int, default=2_000, help="sequential sends per side, over all rounds")
    parser.add_argument("--users", type=int, default=1_000, help="distinct users (keys are user pairs)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    args = parser.parse_args(argv)
    if min(args.n, args.chunk, args.concurrency, args.rounds, args.latency_n) < 1 or args.users < 2:
        parser.error("counts must be positive (and --users at least 2)")
    started = time.perf_counter()
    external = os.environ.get("CHAT_KAFKA_BOOTSTRAP_SERVERS", "").strip()
    with contextlib.ExitStack() as stack:
        if external:
            target = KafkaTarget(external, embedded=False)
        else:
            broker = stack.enter_context(EmbeddedBroker(0))
            target = KafkaTarget(broker.bootstrap_servers, embedded=True)
        settings = make_settings(target.bootstrap_servers, target.embedded)
        print(f"broker {target.bootstrap_servers}, topic prefix {settings.topic_prefix}", file=sys.stderr, flush=True)
        results, work = asyncio.run(measure(settings, target, args))
    result = summarise(results, work, settings, target, args)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    emit(result, format_text, format_markdown, markdown=args.markdown, json_path=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
