"""Codec throughput: Avro envelope encode/decode against orjson JSON and raw fastavro.

Run from the repository root::

    python -m benchmarks.bench_codec [--n 200000] [--repeats 3] [--json PATH] [--markdown]

Single process, single core. Every row runs a fixed number of iterations ``--n`` and reports
the best of ``--repeats`` runs, with the garbage collector disabled inside the timed loop.
Rows:

* ``avro encode``: :meth:`AvroEnvelopeCodec.encode` (validation + datum conversion + fastavro
  + Confluent framing), what every publish pays;
* ``avro decode``: :meth:`AvroEnvelopeCodec.decode` (framing checks + fastavro + envelope
  construction), what every consumer pays;
* ``json ...``: ``orjson.dumps(envelope_to_json(env))`` and
  ``envelope_from_json(orjson.loads(b))``, the JSON form of the same envelope (no validation,
  so ``json encode + validate`` is the like-for-like row for ``avro encode``);
* ``fastavro raw ...``: ``schemaless_writer``/``schemaless_reader`` of the same datum with the
  same parsed schema, without our wrapper: the difference to ``avro ...`` is our overhead;
* components: validation, envelope -> datum and datum -> envelope alone.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from io import BytesIO
from itertools import repeat
from pathlib import Path
from typing import Any

import fastavro
import orjson
from fastavro import schemaless_reader, schemaless_writer

from benchmarks.report import emit
from chat_events.codec.avro import HEADER_SIZE, AvroEnvelopeCodec, envelope_from_avro, envelope_to_avro
from chat_events.codec.factory import build_codec
from chat_events.events import (
    Envelope,
    PersonalChatSent,
    direct_conversation_id,
    envelope_from_json,
    envelope_to_json,
    new_envelope,
)
from chat_events.events.validation import validate_envelope
from chat_events.settings import Settings

TEXT = "Running ten minutes late, the train stopped outside the station. Order me a flat white? Thanks!!! :)"
"""A 100-byte chat message body."""

CODEC_AIM_OPS = 100_000
"""The aim: at least this many envelopes per second per core."""


def make_envelope(sender_id: str | None = None, target_id: str | None = None, text: str = TEXT) -> Envelope:
    """A realistic 1:1 ``personalChatSent`` envelope: uuid ids, one member, client/session/trace ids."""
    sender_id = sender_id or str(uuid.uuid4())
    target_id = target_id or str(uuid.uuid4())
    event = PersonalChatSent(
        message_id=str(uuid.uuid4()),
        sender_id=sender_id,
        target_id=target_id,
        payload=text,
        target_type="user",
        target_members=(target_id,),
        conversation_id=direct_conversation_id(sender_id, target_id),
        message_type="text",
        client_msg_id=str(uuid.uuid4()),
    )
    return new_envelope(
        event,
        user_id=sender_id,
        client_id=str(uuid.uuid4()),
        session_id=str(uuid.uuid4()),
        trace_id=uuid.uuid4().hex,
    )


def make_codec() -> AvroEnvelopeCodec:
    """The codec as the services build it (local schema manifest, default payload limit)."""
    return build_codec(Settings(kafka_bootstrap_servers="127.0.0.1:9092", topic_prefix="bench."))


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    group: str
    """``avro``, ``json``, ``raw`` or ``component``."""
    ops_per_s: float
    us_per_op: float
    runs_ops_per_s: tuple[float, ...]


def time_loop(body: Callable[[int], None], n: int, repeats: int) -> tuple[float, tuple[float, ...]]:
    """Best ops/s of ``repeats`` runs of ``body(n)`` (which runs the operation ``n`` times)."""
    body(min(n, 2_000))  # warm up caches and lazily built state
    runs = []
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            body(n)
            elapsed = time.perf_counter() - start
        finally:
            gc.enable()
        runs.append(n / elapsed)
    return max(runs), tuple(runs)


def cases(codec: AvroEnvelopeCodec, envelope: Envelope) -> list[tuple[str, str, Callable[[int], None]]]:
    """(name, group, body) for every row; each body runs its operation ``n`` times."""
    encode, decode = codec.encode, codec.decode
    framed = encode(envelope)
    assert decode(framed) == envelope
    js = orjson.dumps(envelope_to_json(envelope))
    assert envelope_from_json(orjson.loads(js)) == envelope
    schema = codec._schema  # the parsed schema the codec writes with
    datum = envelope_to_avro(envelope)
    body = framed[HEADER_SIZE:]
    record: dict[str, Any] = schemaless_reader(BytesIO(body), schema, None, return_record_name=True)  # type: ignore[assignment]
    max_payload = make_codec()._max_payload_bytes
    dumps, loads = orjson.dumps, orjson.loads

    def avro_encode(n: int) -> None:
        for _ in repeat(None, n):
            encode(envelope)

    def avro_decode(n: int) -> None:
        for _ in repeat(None, n):
            decode(framed)

    def avro_round_trip(n: int) -> None:
        for _ in repeat(None, n):
            decode(encode(envelope))

    def json_encode(n: int) -> None:
        for _ in repeat(None, n):
            dumps(envelope_to_json(envelope))

    def json_encode_validated(n: int) -> None:
        for _ in repeat(None, n):
            validate_envelope(envelope, max_payload_bytes=max_payload)
            dumps(envelope_to_json(envelope))

    def json_decode(n: int) -> None:
        for _ in repeat(None, n):
            envelope_from_json(loads(js))

    def json_round_trip(n: int) -> None:
        for _ in repeat(None, n):
            envelope_from_json(loads(dumps(envelope_to_json(envelope))))

    def raw_write(n: int) -> None:
        for _ in repeat(None, n):
            buffer = BytesIO()
            schemaless_writer(buffer, schema, datum)
            buffer.getvalue()

    def raw_read(n: int) -> None:
        for _ in repeat(None, n):
            schemaless_reader(BytesIO(body), schema, None, return_record_name=True)

    def raw_round_trip(n: int) -> None:
        for _ in repeat(None, n):
            buffer = BytesIO()
            schemaless_writer(buffer, schema, datum)
            schemaless_reader(BytesIO(buffer.getvalue()), schema, None, return_record_name=True)

    def validate(n: int) -> None:
        for _ in repeat(None, n):
            validate_envelope(envelope, max_payload_bytes=max_payload)

    def to_datum(n: int) -> None:
        for _ in repeat(None, n):
            envelope_to_avro(envelope)

    def from_datum(n: int) -> None:
        # envelope_from_avro replaces the list fields in place; give it a fresh shallow copy
        # of the payload body each time, as schemaless_reader would.
        name, payload = record["payload"]
        for _ in repeat(None, n):
            envelope_from_avro({**record, "payload": (name, dict(payload))})

    def from_datum_copy_only(n: int) -> None:
        name, payload = record["payload"]
        for _ in repeat(None, n):
            _ = {**record, "payload": (name, dict(payload))}

    return [
        ("avro encode (codec, validates)", "avro", avro_encode),
        ("avro decode (codec)", "avro", avro_decode),
        ("avro round trip (codec)", "avro", avro_round_trip),
        ("json encode (orjson)", "json", json_encode),
        ("json encode + validate", "json", json_encode_validated),
        ("json decode (orjson)", "json", json_decode),
        ("json round trip (orjson)", "json", json_round_trip),
        ("fastavro raw write", "raw", raw_write),
        ("fastavro raw read", "raw", raw_read),
        ("fastavro raw round trip", "raw", raw_round_trip),
        ("validate_envelope", "component", validate),
        ("envelope_to_avro", "component", to_datum),
        ("envelope_from_avro (+ dict copy)", "component", from_datum),
        ("  dict copy alone (subtract)", "component", from_datum_copy_only),
    ]


def environment() -> dict[str, Any]:
    import os

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "fastavro": fastavro.__version__,
        "orjson": orjson.__version__,
        "machine": platform.machine(),
    }


def run(n: int, repeats: int, only: set[str] | None = None) -> dict[str, Any]:
    codec = make_codec()
    envelope = make_envelope()
    rows = []
    for name, group, body in cases(codec, envelope):
        if only and group not in only:
            continue
        best, runs = time_loop(body, n, repeats)
        rows.append(Row(name, group, best, 1e6 / best, runs))
        print(f"  {name:<34} {best:>12,.0f} ops/s", file=sys.stderr, flush=True)
    by_name = {r.name: r for r in rows}

    def ratio(avro: str, js: str) -> float | None:
        if avro in by_name and js in by_name:
            return by_name[avro].ops_per_s / by_name[js].ops_per_s
        return None

    framed = codec.encode(envelope)
    js = orjson.dumps(envelope_to_json(envelope))
    return {
        "benchmark": "codec",
        "environment": environment(),
        "n": n,
        "repeats": repeats,
        "sizes": {"avro_framed_bytes": len(framed), "json_bytes": len(js), "text_bytes": len(TEXT.encode())},
        "rows": [asdict(r) for r in rows],
        "ratios_avro_over_json": {
            "encode": ratio("avro encode (codec, validates)", "json encode (orjson)"),
            "encode_both_validated": ratio("avro encode (codec, validates)", "json encode + validate"),
            "decode": ratio("avro decode (codec)", "json decode (orjson)"),
            "round_trip": ratio("avro round trip (codec)", "json round trip (orjson)"),
        },
        "ratios_codec_over_raw_fastavro": {
            "encode": ratio("avro encode (codec, validates)", "fastavro raw write"),
            "decode": ratio("avro decode (codec)", "fastavro raw read"),
            "round_trip": ratio("avro round trip (codec)", "fastavro raw round trip"),
        },
        "aim_ops_per_s": CODEC_AIM_OPS,
    }


def _ratio_for(result: dict[str, Any], row: dict[str, Any]) -> str:
    """The Avro/JSON ratio printed next to an avro row."""
    keys = {
        "avro encode (codec, validates)": "encode",
        "avro decode (codec)": "decode",
        "avro round trip (codec)": "round_trip",
    }
    key = keys.get(row["name"])
    value = result["ratios_avro_over_json"].get(key) if key else None
    return f"{value:.2f}" if value is not None else ""


def format_text(result: dict[str, Any]) -> str:
    env = result["environment"]
    lines = [
        f"chat-events codec benchmark  {env['date']}  python {env['python']}  fastavro {env['fastavro']}  "
        f"orjson {env['orjson']}  cpus {env['cpus']}",
        f"n = {result['n']:,} per run, best of {result['repeats']}; single process, gc disabled in timed loops",
        "",
        f"{'operation':<36}{'ops/s':>12}{'us/op':>9}{'avro/json':>11}",
        "-" * 68,
    ]
    group = None
    for row in result["rows"]:
        if group is not None and row["group"] != group:
            lines.append("")
        group = row["group"]
        lines.append(
            f"{row['name']:<36}{row['ops_per_s']:>12,.0f}{row['us_per_op']:>9.2f}{_ratio_for(result, row):>11}"
        )
    sizes = result["sizes"]
    both = result["ratios_avro_over_json"]["encode_both_validated"]
    lines += [
        "",
        f"encoded size: avro framed {sizes['avro_framed_bytes']} B, json {sizes['json_bytes']} B "
        f"(avro/json {sizes['avro_framed_bytes'] / sizes['json_bytes']:.2f}); text body {sizes['text_bytes']} B",
    ]
    if both is not None:
        lines.append(f"avro encode / (json encode + validate) = {both:.2f}")
    raw = result["ratios_codec_over_raw_fastavro"]
    if raw["encode"] is not None:
        lines.append(
            "codec / raw fastavro: encode {:.2f}, decode {:.2f}, round trip {:.2f}".format(
                raw["encode"], raw["decode"], raw["round_trip"]
            )
        )
    lines.append(f"aim: >= {result['aim_ops_per_s']:,} envelopes/s per core")
    for label, name in (
        ("encode", "avro encode (codec, validates)"),
        ("decode", "avro decode (codec)"),
        ("round trip", "avro round trip (codec)"),
    ):
        found = [r for r in result["rows"] if r["name"] == name]
        if found:
            ops = found[0]["ops_per_s"]
            verdict = "met" if ops >= result["aim_ops_per_s"] else "NOT met"
            lines.append(f"  {label:<11} {ops:>10,.0f}/s  {verdict}")
    return "\n".join(lines)


def format_markdown(result: dict[str, Any]) -> str:
    lines = [
        "| operation | ops/s | µs/op | Avro/JSON |",
        "|---|---:|---:|---:|",
    ]
    for row in result["rows"]:
        name = row["name"].strip()
        lines.append(f"| {name} | {row['ops_per_s']:,.0f} | {row['us_per_op']:.2f} | {_ratio_for(result, row)} |")
    sizes = result["sizes"]
    lines += [
        "",
        "| encoded size | bytes |",
        "|---|---:|",
        f"| Avro, Confluent-framed | {sizes['avro_framed_bytes']} |",
        f"| JSON (orjson) | {sizes['json_bytes']} |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_codec", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200_000, help="iterations per timed run (default 200000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row; the best is reported")
    parser.add_argument("--only", action="append", choices=["avro", "json", "raw", "component"], help="row groups")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        parser.error("--n and --repeats must be positive")
    started = time.perf_counter()
    result = run(args.n, args.repeats, set(args.only) if args.only else None)
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    emit(result, format_text, format_markdown, markdown=args.markdown, json_path=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
