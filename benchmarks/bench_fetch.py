"""One consumer shared by two stages, one of them busy: the other's hop latency, with aiokafka's
default prefetch backoff (0.1 s) and with the product's (:data:`PREFETCH_BACKOFF_S`).

Run from the repository root::

    python -m benchmarks.bench_fetch [--broker embedded|kafka|both] [--records 30]

The worker runs every stage on one consumer. aiokafka holds back every fetch to a broker while
records of one partition wait to be taken, for up to its prefetch backoff; so a stage busy with
its batch delayed the fetches of every other stage. Here a "busy" task takes the records of
topic ``t0`` (a record every 20 ms) and spends 80 ms on each batch; a "measured" task takes the
records of ``t1``, one sent every 300 ms, and the figure is send -> taken. Starts the embedded
broker and/or an Apache Kafka node of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from chat_events.engines import KafkaServer
from chat_events.kafka.embedded import EmbeddedBroker
from chat_events.kafka.idle_pacer import PREFETCH_BACKOFF_S

BUSY_S = 0.08
STREAM_EVERY_S = 0.02
MEASURED_EVERY_S = 0.3


async def hop_latencies(bootstrap: str, backoff_s: float, records: int, fetch_wait_ms: int) -> list[float]:
    topics = [f"busy-{backoff_s}", f"measured-{backoff_s}"]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 4, 1) for name in topics])
    finally:
        await admin.close()
    await asyncio.sleep(1)  # leaders elected
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=fetch_wait_ms)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1)
    await consumer.start()
    await producer.start()
    consumer._fetcher._prefetch_backoff = backoff_s
    busy_tps = [TopicPartition(topics[0], p) for p in range(4)]
    measured_tps = [TopicPartition(topics[1], p) for p in range(4)]
    consumer.assign(busy_tps + measured_tps)
    await consumer.seek_to_end(*busy_tps, *measured_tps)
    latencies: list[float] = []

    async def busy() -> None:
        while True:
            await consumer.getmany(*busy_tps, timeout_ms=500)
            await asyncio.sleep(BUSY_S)

    async def measured() -> None:
        while True:
            for batch in (await consumer.getmany(*measured_tps, timeout_ms=500)).values():
                latencies.extend(time.time() * 1000 - int(record.value) for record in batch)

    async def stream() -> None:
        while True:
            await producer.send(topics[0], b"x", partition=0)
            await asyncio.sleep(STREAM_EVERY_S)

    tasks = [asyncio.ensure_future(task()) for task in (busy, measured, stream)]
    try:
        await asyncio.sleep(1)
        for i in range(records):
            await producer.send_and_wait(topics[1], str(int(time.time() * 1000)).encode(), partition=i % 4)
            await asyncio.sleep(MEASURED_EVERY_S)
        await asyncio.sleep(1)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await producer.stop()
        await consumer.stop()
    return sorted(latencies)


@contextlib.contextmanager
def broker(kind: str) -> Iterator[tuple[str, int]]:
    """(bootstrap servers, the product's fetch wait there)."""
    if kind == "embedded":
        embedded = EmbeddedBroker(0)
        embedded.start()
        try:
            yield embedded.bootstrap_servers, 10
        finally:
            embedded.stop()
        return
    with tempfile.TemporaryDirectory(prefix="bench-fetch-") as work:
        server = KafkaServer(Path(work))
        try:
            yield server.start(), 500
        finally:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_fetch", description=__doc__.split("\n")[0])
    parser.add_argument("--broker", choices=("embedded", "kafka", "both"), default="both")
    parser.add_argument("--records", type=int, default=30, help="measured records per setting")
    args = parser.parse_args(argv)
    kinds = ("embedded", "kafka") if args.broker == "both" else (args.broker,)
    print(f"busy stage: {BUSY_S * 1000:.0f} ms per batch, a record every {STREAM_EVERY_S * 1000:.0f} ms")
    print("| broker | prefetch backoff | hop p50 ms | p90 ms | max ms | n |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind in kinds:
        with broker(kind) as (bootstrap, wait_ms):
            for backoff in (0.1, PREFETCH_BACKOFF_S):
                lat = asyncio.run(hop_latencies(bootstrap, backoff, args.records, wait_ms))
                if not lat:
                    print(f"| {kind} | {backoff:g} s | none taken | | | 0 |")
                    continue
                p50, p90 = lat[len(lat) // 2], lat[int(len(lat) * 0.9)]
                label = f"{backoff:g} s" + (" (aiokafka's default)" if backoff == 0.1 else " (ours)")
                print(f"| {kind} | {label} | {p50:.0f} | {p90:.0f} | {lat[-1]:.0f} | {len(lat)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
