"""``chat-events worker``: the stream processors (persist, fan-out, inbox, sessions, groups)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from chat_events.cli.logs import LEVELS, configure_logging
from chat_events.settings import Settings
from chat_events.streams.worker import run_worker


def register(sub: Any) -> None:
    worker = sub.add_parser("worker", help="run the stream processors until Ctrl-C")
    worker.add_argument(
        "--log-level",
        type=str.upper,
        choices=LEVELS,
        default=None,
        help="level of chat-events' own log lines (default CHAT_LOG_LEVEL=INFO; libraries log WARNING and up)",
    )
    worker.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(args.log_level or settings.log_level)
    print(f"chat-events worker starting (store: {settings.store_kind}); Ctrl-C stops it", flush=True)
    asyncio.run(run_worker(settings, on_ready=lambda app: print("worker ready", flush=True)))
    print("worker stopped", flush=True)
    return 0
