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
