"""``chat-events store init``: create the store's schema (idempotent)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from chat_events.settings import Settings


def register(sub: Any) -> None:
    store = sub.add_parser("store", help="manage the durable store (embedded SQLite or Cassandra)")
    actions = store.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser(
        "init",
        help="create the keyspace and tables (Cassandra) or the SQLite file (embedded); safe to re-run",
    ).set_defaults(handler=init)


def init(args: argparse.Namespace, settings: Settings) -> int:
    if settings.store_kind == "cassandra":
        from chat_events.store.cql import init_schema

        tables = asyncio.run(init_schema(settings))
        print(f"cassandra keyspace {settings.cassandra_keyspace}: {len(tables)} tables ready")
        for name in tables:
            print(f"  {name}")
        return 0
    asyncio.run(_init_embedded(settings))
    print(f"embedded store ready: {settings.store_path}")
    return 0


async def _init_embedded(settings: Settings) -> None:
    from chat_events.store.factory import open_store

    async with open_store(settings):  # opening creates (or checks) the SQLite schema
        pass
