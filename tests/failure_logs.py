"""On a failed test, the tails of the logs its processes wrote (workers, edges, `up`), attached
to the failure report: CI keeps only the test run's output, so a flaky failure there is
diagnosable only from what the report carries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

TAIL_LINES = 40
ENGINE_DIRS = ("engines",)
"""The session's Kafka and Cassandra logs: long, and shared by every test."""


def logs_written_since(base: Path, since: float) -> list[Path]:
    """``*.log`` files under ``base`` modified at or after ``since`` (epoch seconds), oldest
    first, without the real engines' own logs."""
    found = [
        path
        for path in base.rglob("*.log")
        if path.is_file()
        and path.stat().st_mtime >= since
        and not any(part.startswith(ENGINE_DIRS) for part in path.relative_to(base).parts)
    ]
    return sorted(found, key=lambda path: path.stat().st_mtime)


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of ``path`` that are not DEBUG."""
    kept = [line for line in path.read_text(errors="replace").splitlines() if " DEBUG " not in line]
    return "\n".join(kept[-lines:])


def sections(base: Path, since: float) -> Iterator[tuple[str, str]]:
    """(title, text) per log a failed test's processes wrote."""
    for path in logs_written_since(base, since):
        text = tail(path)
        if text:
            yield f"log {path.relative_to(base)}", text
