"""``chat-events publish`` and ``chat-events consume``: the Kafka-tooling round trip."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from chat_events.cli.publish_input import envelope_from_cli, publish_topic, read_json_argument
from chat_events.codec import build_codec
from chat_events.errors import UnknownTopicError, UsageError
from chat_events.events import EVENT_TYPES, envelope_to_json
from chat_events.kafka.connection import resolve_target
from chat_events.kafka.consumer import consume_envelopes
from chat_events.producers import EventPublisher
from chat_events.settings import Settings
from chat_events.topics import EDGE_TOPIC_PREFIX, ResolvedTopic, TopicCatalog

PUBLISH_DESCRIPTION = """\
Validate one event against its contract (schema, ids, size limits), encode it and write it
straight to its Kafka topic; prints topic, partition, offset and the envelope id.

This bypasses the edge and its rules: no sign-in or authorisation, no refusal of messages to
yourself or to unknown groups or groups you are not a member of, no rate limits or blocks. It is
for operators and tests; users send through the edge (WebSocket /ws, `chat-events chat`).

--json takes the event's fields, or a whole envelope in its JSON form ({"payload": {EVENT:
{...}}, ...}); inline, @FILE to read a file, or - to read stdin. Either form may leave out what
publish fills in: the envelope's id, version, name, namespace, parentNamespace, timestamp and
traceId; userId, sessionId and clientId from the flags below (a personalChatSent's userId
defaults to its sender_id); a personalChatSent's message_id and conversation_id."""


def register(sub: Any) -> None:
    publish = sub.add_parser(
        "publish",
        help="validate, encode and write one event straight to Kafka (past the edge's rules); prints where",
        description=PUBLISH_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    publish.add_argument("event", choices=sorted(EVENT_TYPES), help="event name")
    publish.add_argument(
        "--json",
        required=True,
        dest="body",
        metavar="JSON|@FILE|-",
        help="the event's fields or a whole envelope, as JSON; @FILE reads a file, - reads stdin",
    )
    publish.add_argument("--user-id", help="envelope userId (required for user events; defaults to sender_id)")
    publish.add_argument("--session-id", help="envelope sessionId")
    publish.add_argument("--client-id", default="chat-events-cli", help="envelope clientId")
    publish.set_defaults(handler=publish_event)

    consume = sub.add_parser("consume", help="print a topic's envelopes as JSON, one per line")
    consume.add_argument("topic", help="topic name (declared or prefixed)")
    consume.add_argument("--from-beginning", action="store_true", help="start at the oldest record")
    consume.add_argument(
        "--event",
        action="append",
        dest="events",
        metavar="EVENT",
        help="print only this event type (repeatable); the others are skipped and do not count for --max/--timeout",
    )
    consume.add_argument("--max", type=int, default=None, help="stop after N records")
    consume.add_argument(
        "--timeout", type=float, default=None, help="stop once no record (of the chosen events) arrived for S seconds"
    )
    consume.add_argument("--meta", action="store_true", help="wrap each line with topic, partition, offset, key")
    consume.set_defaults(handler=consume_topic)


def publish_event(args: argparse.Namespace, settings: Settings) -> int:
    body = read_json_argument(args.body, sys.stdin)
    envelope = envelope_from_cli(args.event, body, args.user_id, args.session_id, args.client_id)
    codec = build_codec(settings)
    codec.encode(envelope)  # validate before touching the network
    topic = publish_topic(TopicCatalog(settings), envelope)
    target = resolve_target(settings)

    async def run() -> None:
        async with EventPublisher(settings, target, codec) as publisher:
            result = await publisher.publish(envelope, topic=topic)
        line = {"topic": result.topic, "partition": result.partition, "offset": result.offset, "id": envelope.id}
        print(orjson.dumps(line).decode(), flush=True)

    asyncio.run(run())
    return 0


def consume_target(catalog: TopicCatalog, name: str, events: Sequence[str] | None) -> ResolvedTopic:
    """The topic ``consume`` reads, checked with its ``--event`` filter: an undeclared topic is an
    :class:`UnknownTopicError`, an event the topic does not carry a :class:`UsageError`."""
    try:
        topic = catalog.by_name(name)
    except KeyError:
        known = ", ".join(t.name for t in catalog.all())
        raise UnknownTopicError(
            f"unknown topic {name!r}; declared: {known} (and {EDGE_TOPIC_PREFIX}<edge_id> per edge)"
        ) from None
    for event in events or ():
        if event not in topic.spec.events:
            raise UsageError(f"--event {event}: {topic.name} carries {', '.join(topic.spec.events)}")
    return topic


def consume_topic(args: argparse.Namespace, settings: Settings) -> int:
    topic = consume_target(TopicCatalog(settings), args.topic, args.events).name
    codec = build_codec(settings)
    target = resolve_target(settings)
    failures = 0

    async def run() -> None:
        nonlocal failures
        records = consume_envelopes(
            settings,
            target,
            codec,
            topic,
            from_beginning=args.from_beginning,
            max_records=args.max,
            idle_timeout_s=args.timeout,
            event_names=frozenset(args.events) if args.events else None,
        )
        async for record in records:
            if record.envelope is None:
                failures += 1
                print(
                    f"undecodable record {record.topic}/{record.partition}@{record.offset}: {record.error}",
                    file=sys.stderr,
                    flush=True,
                )
                continue
            value: Any = envelope_to_json(record.envelope)
            if args.meta:
                key = record.key.decode("utf-8", "replace") if record.key is not None else None
                value = {
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "key": key,
                    "envelope": value,
                }
            sys.stdout.write(orjson.dumps(value).decode() + "\n")
            sys.stdout.flush()

    asyncio.run(run())
    return 0
