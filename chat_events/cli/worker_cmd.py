"""``chat-events worker``: the stream processors (persist, fan-out, inbox, sessions, groups)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from chat_events.settings import Settings
from chat_events.streams.worker import run_worker


def register(sub: Any) -> None:
    worker = sub.add_parser("worker", help="run the stream processors until Ctrl-C")
    worker.add_argument("--log-level", default="WARNING", help="Python log level (default WARNING)")
    worker.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(f"chat-events worker starting (store: {settings.store_kind}); Ctrl-C stops it", flush=True)
    asyncio.run(run_worker(settings, on_ready=lambda app: print("worker ready", flush=True)))
    print("worker stopped", flush=True)
    return 0
