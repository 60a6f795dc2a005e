"""Printing a benchmark's results: text table, optional Markdown, optional JSON file."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def emit(
    result: dict[str, Any],
    format_text: Callable[[dict[str, Any]], str],
    format_markdown: Callable[[dict[str, Any]], str],
    *,
    markdown: bool,
    json_path: Path | None,
) -> None:
    print(format_text(result))
    if markdown:
        print()
        print(format_markdown(result))
    if json_path:
        json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\n(wall time {result['wall_seconds']} s)", file=sys.stderr)


def comparison_rows(
    runs: list[dict[str, Any]], figures: Callable[[dict[str, Any]], dict[str, str]]
) -> list[tuple[str, list[str]]]:
    """One row per figure label (in the order the runs name them), one cell per run: its value,
    ``-`` where it has no such figure, ``failed`` for a run that has an ``error``."""
    per_run = [None if "error" in run else figures(run) for run in runs]
    labels: dict[str, None] = {}
    for found in per_run:
        labels.update(dict.fromkeys(found or {}))
    return [(label, ["failed" if f is None else f.get(label, "-") for f in per_run]) for label in labels]


def comparison_text(columns: list[str], rows: list[tuple[str, list[str]]]) -> str:
    """A plain-text table: one row per figure, one right-aligned column per run."""
    label_width = max([len("figure"), *(len(label) for label, _ in rows)])
    widths = [max([len(c), *(len(cells[i]) for _, cells in rows)]) for i, c in enumerate(columns)]
    lines = ["  ".join(["figure".ljust(label_width), *(c.rjust(w) for c, w in zip(columns, widths, strict=True))])]
    lines.append("  ".join(["-" * label_width, *("-" * w for w in widths)]))
    for label, cells in rows:
        lines.append("  ".join([label.ljust(label_width), *(c.rjust(w) for c, w in zip(cells, widths, strict=True))]))
    return "\n".join(lines)


def comparison_markdown(columns: list[str], rows: list[tuple[str, list[str]]]) -> str:
    lines = ["| figure | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    lines += [f"| {label.strip()} | " + " | ".join(cells) + " |" for label, cells in rows]
    return "\n".join(lines)
