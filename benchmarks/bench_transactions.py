"""One Kafka transaction's steps as the worker makes them, timed alone: begin, send one output,
``send_offsets_to_transaction``, the output's acknowledgement, commit, and until a
``read_committed`` consumer sees the output. Starts its own Apache Kafka node.

Run from the repository root::

    python -m benchmarks.bench_transactions [--transactions 40] [--retry-backoff-ms 10]

This is the floor of one transactional hop with aiokafka 0.14 (AddPartitionsToTxn,
AddOffsetsToTxn, TxnOffsetCommit and EndTxn, one after the other); the worker's pipeline has two
such hops per message (persist, inbox). The first 5 transactions are left out of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from chat_events.engines import KafkaServer

STEPS = ("begin", "send", "offsets", "ack", "commit", "visible", "total")


async def measure(bootstrap: str, count: int, backoff_ms: int) -> dict[str, list[float]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("out", 1, 1), NewTopic("in", 1, 1)])
    finally:
        await admin.close()
    await asyncio.sleep(2)  # leaders elected
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id="bench-transactions",
        retry_backoff_ms=backoff_ms,
        linger_ms=2,
        acks="all",
        enable_idempotence=True,
    )
    consumer = AIOKafkaConsumer(
        "out", bootstrap_servers=bootstrap, isolation_level="read_committed", fetch_max_wait_ms=10
    )
    await producer.start()
    await consumer.start()
    await consumer.seek_to_end()
    steps: dict[str, list[float]] = {step: [] for step in STEPS}
    try:
        for i in range(count):
            marks = [time.perf_counter()]
            await producer.begin_transaction()
            marks.append(time.perf_counter())
            sent = await producer.send("out", b"x%d" % i)
            marks.append(time.perf_counter())
            await producer.send_offsets_to_transaction({TopicPartition("in", 0): i + 1}, "bench-transactions")
            marks.append(time.perf_counter())
            await sent
            marks.append(time.perf_counter())
            await producer.commit_transaction()
            marks.append(time.perf_counter())
            while not any((await consumer.getmany(timeout_ms=1000)).values()):
                pass
            marks.append(time.perf_counter())
            if i >= 5:
                for step, start, end in zip(STEPS, marks, marks[1:], strict=False):
                    steps[step].append((end - start) * 1000)
                steps["total"].append((marks[-1] - marks[0]) * 1000)
    finally:
        await producer.stop()
        await consumer.stop()
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_transactions")
    parser.add_argument("--transactions", type=int, default=40)
    parser.add_argument("--retry-backoff-ms", type=int, default=10, help="the worker's (TRANSACTION_RETRY_BACKOFF_MS)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-transactions-") as work:
        server = KafkaServer(Path(work) / "kafka")
        server.start()
        try:
            steps = asyncio.run(measure(server.bootstrap_servers, max(args.transactions, 6), args.retry_backoff_ms))
        finally:
            server.stop()
    for step, values in steps.items():
        print(f"{step:8} p50 {statistics.median(values):7.1f} ms   max {max(values):7.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
