"""``chat-events topics create|list``."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import resolve_target
from chat_events.settings import Settings
from chat_events.topics import TopicCatalog


def register(sub: Any) -> None:
    topics = sub.add_parser("topics", help="create or list the declared topics")
    actions = topics.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("create", help="create missing topics (idempotent)").set_defaults(handler=create)
    actions.add_parser("list", help="list declared topics, keys and events").set_defaults(handler=list_topics)


def create(args: argparse.Namespace, settings: Settings) -> int:
    statuses = asyncio.run(ensure_topics(settings, resolve_target(settings)))
    for status in statuses:
        print(f"{status.name}\t{status.partitions}\t{status.status}")
    return 1 if any(s.status == "partition-mismatch" for s in statuses) else 0


def list_topics(args: argparse.Namespace, settings: Settings) -> int:
    for topic in TopicCatalog(settings).all():
        events = ",".join(topic.spec.events)
        print(f"{topic.name}\tpartitions={topic.partitions}\tkey={topic.spec.key}\tevents={events}")
    return 0
