"""Text and Markdown reports of ``benchmarks.bench_edge``: per run, then issue 12's table.

A run is the dict :func:`benchmarks.bench_edge.run_on` returns; several stacks (``--stack all``)
are combined as ``{"runs": [...]}``. Either way the report ends with the issue's table, one column
per stack run (:func:`benchmarks.workload.issue_table_text`), and the issue's targets.
"""

from __future__ import annotations

import os
from typing import Any

from benchmarks.workload import (
    EJABBERD,
    issue_table_markdown,
    issue_table_text,
    server_share,
    target_lines,
    variants,
)

PROCESSES = ("broker", "cassandra", "worker", "edge", "generator")
"""The processes whose CPU is sampled (``cassandra`` only on the Cassandra stack)."""
IDLE_AIM = 10_000
IDLE_KIB_AIM = 40.0
"""Idle-connection scenario (``--only idle``): ≥ 10,000 idle connections per edge, under 40 KiB each."""


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def cpu_line(cpu: dict[str, Any]) -> str:
    p = cpu.get("processes", {})
    parts = []
    for name in PROCESSES:
        if name in p:
            share = p[name]
            main = f" (main thread {share['main']:.0%})" if name in ("worker", "edge") else ""
            parts.append(f"{name} {share['total']:.0%}{main}")
    servers = f"; server processes together {server_share(cpu):.0%}"
    machine = ""
    if "machine_busy_cores" in cpu:
        machine = f"; machine {cpu['machine_busy_cores']:.2f} of {os.cpu_count()} cores busy (other jobs included)"
    return "CPU, share of one core: " + ", ".join(parts) + servers + machine


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


def primed_line(p: dict[str, Any] | None) -> list[str]:
    if not p:
        return []
    lat = p["latency"]
    return [
        f"  priming (--prime, not measured): {p['messages']:,} messages, {p['delivered']:,} of {p['expected']:,} "
        f"deliveries in {p['seconds']:.1f} s; slowest delivery {lat.get('max_ms', float('nan')):,.0f} ms"
    ]


def phase_lines(p: dict[str, Any], unit: str) -> list[str]:
    """The body of one phase: window figures, then what the drain found, CPU."""
    per_message = p["recipients_per_message"]
    group = f" ({p['delivered_per_s'] / per_message:,.0f} messages/s)" if per_message > 1 else ""
    if p["drained"]:
        after = (
            f"after the window: sending stopped; expected {p['expected']:,} deliveries, delivered {p['delivered']:,}, "
            f"lost {p['lost']:,}, duplicates {p['duplicates']:,} (drain {p['drain_s']:.1f} s)"
        )
    else:
        after = f"not drained (the system is thrown away): {p['expected'] - p['delivered']:,} deliveries outstanding"
    if p["delivered_unanswered"]:
        after += f"; {p['delivered_unanswered']:,} deliveries of sends that failed"
    return [
        f"    delivered {p['delivered_per_s']:,.0f} {unit} in the window{group}; "
        f"sends answered {p['answered_in_window_per_s']:,.0f}/s in the window "
        f"({p['offered_per_s']:,.0f}/s sent over the whole phase)",
        f"    send -> receive, deliveries in the window: {lat_text(p['latency'])}",
        f"    send -> answer: {lat_text(p['answer_latency'])}",
        f"    {after}",
        f"    {cpu_line(p['cpu'])}",
        f"    busiest: {bottleneck(p['cpu'])}",
        *changes_lines(p.get("changes")),
    ]


def changes_lines(c: dict[str, Any] | None) -> list[str]:
    """What the slots of a phase with changes were (issue 16), and the changes' own latency."""
    if not c:
        return []
    slots = c["slots"]
    kinds = ", ".join(f"{kind} {slots.get(kind, 0):,}" for kind in ("send", "edit", "reaction_add", "reaction_remove"))
    return [
        f"    slots ({c['share']:.0%} drawn as changes): {kinds}; "
        f"no target received yet {slots.get('no_target', 0):,}; "
        f"change deliveries before their answer {c['delivered_before_answer']:,}, never matched "
        f"{c['unmatched_deliveries']:,}",
        f"    the change deliveries alone, in the window: {lat_text(c['latency'])}",
        f"    change -> answer, in the window: {lat_text(c.get('answer_latency', {}))}",
    ]


def saturation_lines(s: dict[str, Any], unit: str, what: str) -> list[str]:
    p = s["phase"]
    lines = primed_line(s.get("primed"))
    lines.append(
        f"  saturation, closed loop: ≤ {s['outstanding_per_sender']} messages per sender not yet {what}; "
        f"{p['window_s']:.1f} s window after {p['warmup_s']:g} s warm-up:"
    )
    lines += phase_lines(p, unit)
    a = s.get("ack_gated")
    if a:
        lines.append(
            f"  extra (--ack-gated, not the issue's workload): closed loop on the send's answer, "
            f"{a['outstanding_per_sender']} outstanding per sender, {a['window_s']:.1f} s window after "
            f"{a['warmup_s']:g} s warm-up (the answer means Kafka has it; the backlog grows):"
        )
        lines += phase_lines(a, unit)
    return lines


def latency_lines(lat: dict[str, Any], senders: int, unit: str) -> list[str]:
    lines = primed_line(lat.get("primed"))
    idle = lat.get("idle")
    if idle:
        lines.append(
            f"  idle, {idle['users']} users connected and nothing sent, {idle['seconds']:g} s after "
            f"{idle['settle_s']:g} s settling: all server processes {idle['server_share']:.1%} of one core"
        )
        lines.append(f"    {cpu_line(idle['cpu'])}")
    for step in lat["steps"]:
        lines.append(
            f"  latency, open loop: {step['rate']:g} {unit} offered in total, evenly staggered over {senders} senders; "
            f"{step['window_s']:.1f} s window after {step['warmup_s']:g} s warm-up:"
        )
        lines += phase_lines(step, "deliveries/s")
    return lines


def idle_connection_lines(i: dict[str, Any]) -> list[str]:
    return [
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
        f"  aims: ≥ {IDLE_AIM:,} held: "
        + (met(i["still_open_after_3s"] >= IDLE_AIM) if i["target"] >= IDLE_AIM else f"not tried ({i['target']:,})")
        + f"; < {IDLE_KIB_AIM:g} KiB each: {met(i['kib_per_connection'] < IDLE_KIB_AIM)}",
    ]


def problems_lines(label: str, r: dict[str, Any]) -> list[str]:
    lines = []
    parts = [r.get(k, {}) for k in ("phase", "ack_gated")] + list(r.get("steps", []))
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


def format_text(r: dict[str, Any]) -> str:
    """One run in detail (without the issue's table: see :func:`format_result_text`)."""
    env = r["environment"]
    load = env["load_average_at_start"]
    lines = [
        f"chat-events end-to-end benchmark  {env['date']}  python {env['python']}  websockets {env['websockets']}  "
        f"cpus {env['cpus']}" + (f"  load {load[0]:.2f}" if load else ""),
        f"stack {env['stack']} (engines up in {env['stack_start_s']:.1f} s); broker: {env['broker']}; "
        f"store: {env['store']}; one worker + one edge + this load generator (uvloop)",
        "settings changed from the defaults: "
        + " ".join(f"{k}={v}" for k, v in env["settings"].items())
        + " (the per-user send rate limits are raised for the benchmark)",
        f"workload: {env.get('workload', '-')}",
        f"command: {r['command']}",
    ]
    if r.get("cassandra_schema_s"):
        times = r["cassandra_schema_s"]
        lines.append(f"Cassandra keyspaces created (not measured): {len(times)}, {sum(times) / len(times):.1f} s each")
    if "w1_saturation" in r:
        s = r["w1_saturation"]
        lines += ["", f"W1 1:1, {s['users']} users in {s['users'] // 2} fixed pairs (u2k <-> u2k+1)"]
        lines += saturation_lines(s, "msg/s to recipients", "delivered to the partner")
    if "w1_latency" in r:
        lat = r["w1_latency"]
        lines += ["", f"W1 latency, {lat['users']} users in {lat['users'] // 2} fixed pairs"]
        lines += latency_lines(lat, lat["users"], "msg/s")
    if "w2_saturation" in r:
        s = r["w2_saturation"]
        lines += ["", f"W2 group of {s['members']} members, {s['senders']} senders, all members connected"]
        lines += saturation_lines(s, "deliveries/s to recipients", f"received by all {s['members'] - 1}")
    if "w2_latency" in r:
        lat = r["w2_latency"]
        lines += ["", f"W2 latency, group of {lat['members']} members"]
        lines += latency_lines(lat, lat["senders"], "group msg/s")
    name = variants(r)[-1][1]  # "W2 + 10% changes" when the run has it
    if "w2changes_saturation" in r:
        s = r["w2changes_saturation"]
        lines += ["", f"{name} (edits and reactions of delivered messages), group of {s['members']} members"]
        lines += saturation_lines(s, "deliveries/s to recipients", f"received by all {s['members'] - 1}")
    if "w2changes_latency" in r:
        lat = r["w2changes_latency"]
        lines += ["", f"{name} latency, group of {lat['members']} members"]
        lines += latency_lines(lat, lat["senders"], "group msg/s")
    for i in r.get("idle", []):
        lines += idle_connection_lines(i)
    profiles = r.get("w1_saturation", {}).get("phase", {}).get("profiles")
    if profiles:
        lines += ["", "where the time goes (py-spy, right after the W1 saturation window, same load):"]
        for name, p in profiles.items():
            lines += profile_lines(name, p)
    problems = []
    for key in (f"{prefix}_{kind}" for prefix, _ in variants(r) for kind in ("saturation", "latency")):
        if key in r:
            problems += problems_lines(key, r[key])
    for i in r.get("idle", []):
        problems += problems_lines(f"idle ({i['compression']})", i)
    lines += ["", "problems observed:"] + (problems or ["  none"])
    return "\n".join(lines)


def summary_text(runs: list[dict[str, Any]]) -> str:
    """The issue's table (one column per stack run), the reference and each run's targets."""
    parts = ["issue 12 workload, one column per stack:\n" + issue_table_text(runs), f"reference: {EJABBERD}"]
    parts += ["\n".join([f"{r['stack']}:", *target_lines(r)]) for r in runs if "error" not in r]
    return "\n\n".join(parts)


def format_result_text(r: dict[str, Any]) -> str:
    """A single-stack run, or ``{"runs": [...]}`` of several: each in detail, then the summary."""
    runs = r.get("runs", [r])
    parts = []
    for run in runs:
        body = f"failed: {run['error']}" if "error" in run else format_text(run)
        parts.append(f"===== {run['stack']} =====\n{body}" if len(runs) > 1 else body)
    parts.append(summary_text(runs))
    return "\n\n".join(parts)


# --- Markdown -------------------------------------------------------------------------------


def cpu_cell(cpu: dict[str, Any], name: str) -> str:
    """A process's share of one core (worker and edge: ``total (event loop)``), ``—`` if absent."""
    p = cpu.get("processes", {})
    if name not in p:
        return "—"
    share = p[name]
    if name in ("worker", "edge"):
        return f"{share['total']:.0%} ({share['main']:.0%})"
    return f"{share['total']:.0%}"


def cpu_rows(r: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    rows: list[tuple[str, dict[str, Any]]] = []
    idle = r.get("w1_latency", {}).get("idle")
    if idle:
        rows.append((f"idle, {idle['users']} users connected, nothing sent", idle["cpu"]))
    for prefix, name in variants(r):
        if (key := f"{prefix}_saturation") in r:
            rows.append((f"{name} saturation", r[key]["phase"]["cpu"]))
            if "ack_gated" in r[key]:
                rows.append((f"{name} saturation, ACK-gated (extra)", r[key]["ack_gated"]["cpu"]))
    for prefix, name in variants(r):
        rows += [(f"{name} at {s['rate']:g} msg/s", s["cpu"]) for s in r.get(f"{prefix}_latency", {}).get("steps", [])]
    rows += [(f"opening idle connections ({i['compression']})", i["cpu_while_opening"]) for i in r.get("idle", [])]
    return rows


def format_markdown(r: dict[str, Any]) -> str:
    """One run's CPU table (the figures themselves are in the issue's table)."""
    rows = cpu_rows(r)
    names = tuple(n for n in PROCESSES if n != "cassandra" or any(n in c.get("processes", {}) for _, c in rows))
    headers = {"worker": "worker (event loop)", "edge": "edge (event loop)", "generator": "load generator"}
    lines = [
        "| CPU, share of one core | "
        + " | ".join(headers.get(n, n) for n in names)
        + " | server processes | machine, cores busy |",
        "|---|" + "---:|" * (len(names) + 2),
    ]
    for label, cpu in rows:
        machine = cpu.get("machine_busy_cores")
        cells = [cpu_cell(cpu, n) for n in names]
        cells += [f"{server_share(cpu):.0%}", "—" if machine is None else f"{machine:.2f}"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_result_markdown(r: dict[str, Any]) -> str:
    runs = r.get("runs", [r])
    parts = [issue_table_markdown(runs)]
    parts += [f"#### CPU, {run['stack']}\n\n{format_markdown(run)}" for run in runs if "error" not in run]
    return "\n\n".join(parts)
