"""``chat-events engines fetch|status``: obtain the real engines ahead of time, or say whether
this machine can run them (Java 17+, Maven or a filled cache)."""

from __future__ import annotations

import argparse
from typing import Any

from chat_events.engines import engines_available
from chat_events.engines.availability import find_java
from chat_events.engines.maven import ENGINES, cache_folder, classpath, default_cache_dir, is_cached
from chat_events.settings import Settings


def register(sub: Any) -> None:
    engines = sub.add_parser("engines", help="the real Apache Kafka and Cassandra that `up` and the tests run")
    actions = engines.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("fetch", help="resolve both with Maven into the engine cache (CHAT_ENGINES_CACHE)").set_defaults(
        handler=fetch
    )
    actions.add_parser("status", help="say whether this machine can run them, and what is cached").set_defaults(
        handler=status
    )


def fetch(args: argparse.Namespace, settings: Settings) -> int:
    cache = default_cache_dir()
    java = find_java()
    for name in ENGINES:
        jars = classpath(cache, name)
        print(f"{name}: {len(jars)} jars in {cache_folder(cache, name)}", flush=True)
    print(f"java: {java.executable} (Java {java.major})")
    return 0


def status(args: argparse.Namespace, settings: Settings) -> int:
    cache = default_cache_dir()
    ok, reason = engines_available(cache)
    for name in ENGINES:
        state = "cached" if is_cached(cache, name) else "not cached (resolved with Maven on first use)"
        print(f"{name}: {state} ({cache_folder(cache, name)})")
    print("real engines: available" if ok else f"real engines: unavailable: {reason}")
    return 0 if ok else 1
