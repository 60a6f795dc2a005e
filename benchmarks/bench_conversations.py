"""The conversation list's figures (issue 15), through a real edge and worker on the chosen stack:

* ``GET /v1/conversations`` (first page of 50) and ``GET /v1/unread`` for a user with
  ``--conversations`` (1,000) conversations: p50 / p99 over ``--requests`` sequential requests;
* a read's round trip: a message arrives, one device sends ``read`` for it, the time until the
  user's other device gets the ``conversation`` push (edge -> chat.inbox -> worker -> store ->
  chat.edge -> edge), one read at a time.

    python -m benchmarks.bench_conversations [--stack embedded|kafka|kafka-cassandra|all]

Its own command; figures in docs/benchmarks.md ("Conversations (issue 15)")."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from benchmarks.bench_edge import Context, cleanup, start_system
from benchmarks.bench_edge import parse_args as edge_args
from benchmarks.edge_load import percentile
from benchmarks.stacks import add_stack_argument, stacks_to_run, started_stack
from chat_events.client import ChatClient, HttpApi
from chat_events.events.conversations import direct_conversation_id


def summary(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)
    return {
        "n": len(ordered),
        "p50_ms": round(percentile(ordered, 50) * 1000, 2),
        "p99_ms": round(percentile(ordered, 99) * 1000, 2),
    }


async def measure(ctx: Context, conversations: int, requests: int, reads: int) -> dict[str, Any]:
    system = await start_system(ctx, "conversations")
    bob, peers = f"bob-{ctx.run_id}", [f"p{i:05d}-{ctx.run_id}" for i in range(conversations)]
    async with HttpApi(system.http) as api:
        token = (await api.dev_token(bob)).token
    phone = ChatClient(system.http, token=token, device_id="phone")
    laptop = ChatClient(system.http, token=token, device_id="laptop")
    await phone.connect()
    await laptop.connect()
    try:
        started = time.perf_counter()
        for peer in peers:  # bob's own copies make one row per conversation
            await phone.send("user", peer, "hi")
        while laptop.last_seq < conversations:
            await laptop.receive(timeout=120)
        fill_s = time.perf_counter() - started
        headers = {"Authorization": f"Bearer {token}"}
        timings: dict[str, list[float]] = {"list": [], "unread": []}
        async with httpx.AsyncClient(base_url=system.http, headers=headers) as http:
            for _ in range(requests):
                for name, path in (("list", "/v1/conversations?limit=50"), ("unread", "/v1/unread")):
                    t0 = time.perf_counter()
                    response = await http.get(path)
                    timings[name].append(time.perf_counter() - t0)
                    response.raise_for_status()
        round_trips = []
        async with HttpApi(system.http) as api:
            alice = ChatClient(system.http, token=(await api.dev_token(f"alice-{ctx.run_id}")).token, device_id="a")
        await alice.connect()
        conv = direct_conversation_id(bob, f"alice-{ctx.run_id}")
        try:
            for i in range(reads):  # alice writes, bob's laptop shows it, his phone reads it
                await alice.send("user", bob, f"m{i}")
                seq = (await laptop.receive(timeout=30)).message["seq"]
                t0 = time.perf_counter()
                await phone.read(conv, seq)
                while True:
                    change = await asyncio.wait_for(laptop.conversations.changes.get(), 30)
                    if change["conversation_id"] == conv and change["read_seq"] >= seq:
                        break
                round_trips.append(time.perf_counter() - t0)
        finally:
            await alice.close()
    finally:
        await phone.close()
        await laptop.close()
    return {
        "conversations": conversations,
        "fill_seconds": round(fill_s, 1),
        "list_first_page": summary(timings["list"]),
        "unread": summary(timings["unread"]),
        "read_to_other_device": summary(round_trips),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_stack_argument(parser)
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--reads", type=int, default=100)
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-conversations-") as tmp:
        for name in stacks_to_run(args.stack):
            with started_stack(name, Path(tmp) / name) as stack:
                ctx = Context(edge_args(["--stack", name]), Path(tmp) / name / "run", uuid.uuid4().hex[:6], stack)
                ctx.root.mkdir(parents=True)
                with cleanup(ctx):
                    result = asyncio.run(measure(ctx, args.conversations, args.requests, args.reads))
                results.append({"stack": name, **result})
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    for r in results:
        print(
            f"{r['stack']}: {r['conversations']} conversations; list page p50/p99 "
            f"{r['list_first_page']['p50_ms']}/{r['list_first_page']['p99_ms']} ms; unread "
            f"{r['unread']['p50_ms']}/{r['unread']['p99_ms']} ms; read -> other device "
            f"{r['read_to_other_device']['p50_ms']}/{r['read_to_other_device']['p99_ms']} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
