"""The failure-report logs (tests/failure_logs.py): only this test's logs, never the engines', no DEBUG."""

from __future__ import annotations

import os
from pathlib import Path

from tests.failure_logs import logs_written_since, sections


def test_only_logs_written_since_the_test_started_and_not_the_engines(tmp_path: Path) -> None:
    old, new, engine = tmp_path / "a" / "old.log", tmp_path / "b" / "worker.log", tmp_path / "engines0" / "kafka.log"
    for path in (old, new, engine):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("2026-12-01 DEBUG noise\nworker ready\n")
    os.utime(old, (1000, 1000))
    assert logs_written_since(tmp_path, since=2000) == [new]
    assert list(sections(tmp_path, since=2000)) == [("log b/worker.log", "worker ready")]
