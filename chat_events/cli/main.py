"""The ``chat-events`` command line. Settings are read once here and passed down."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from chat_events.cli import (
    broker_cmd,
    chat_cmd,
    edge_cmd,
    engines_cmd,
    events_cmd,
    group_cmd,
    schemas_cmd,
    store_cmd,
    topics_cmd,
    up_cmd,
    worker_cmd,
)
from chat_events.errors import ChatEventsError
from chat_events.lifeline import follow_parent
from chat_events.settings import Settings

Handler = Callable[[argparse.Namespace, Settings], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chat-events",
        description="Kafka event-driven chat backend. Settings come from CHAT_* environment variables.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    broker_cmd.register(sub)
    up_cmd.register(sub)
    engines_cmd.register(sub)
    topics_cmd.register(sub)
    events_cmd.register(sub)
    schemas_cmd.register(sub)
    worker_cmd.register(sub)
    store_cmd.register(sub)
    chat_cmd.register(sub)
    group_cmd.register(sub)
    edge_cmd.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    follow_parent()  # a child of `up` (CHAT_PARENT_PID set) stops when up is gone, however it ended
    try:
        settings = Settings()
        return handler(args, settings)
    except ChatEventsError as exc:
        print(f"error: {exc.code}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
