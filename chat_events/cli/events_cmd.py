"""``chat-events publish`` and ``chat-events consume``: the Kafka-tooling round trip."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from dataclasses import replace
from typing import Any

import orjson

from chat_events.codec import build_codec
from chat_events.errors import EventValidationError
from chat_events.events import (
    EVENT_TYPES,
    Envelope,
    PersonalChatSent,
    conversation_id_of,
    envelope_from_json,
    envelope_to_json,
    event_from_json,
    new_envelope,
)
from chat_events.events.factory import CONTRACT_VERSION, utc_timestamp
from chat_events.events.types import PARENT_NAMESPACE
from chat_events.kafka.connection import resolve_target
from chat_events.kafka.consumer import consume_envelopes
from chat_events.producers import EventPublisher
from chat_events.settings import Settings
from chat_events.topics import TopicCatalog


def register(sub: Any) -> None:
    publish = sub.add_parser("publish", help="validate, encode and send one event; prints topic/partition/offset")
    publish.add_argument("event", choices=sorted(EVENT_TYPES), help="event name")
    publish.add_argument(
        "--json",
        required=True,
        dest="body",
        help='the event\'s fields as JSON, or a whole envelope in its JSON form ({"payload": {...}, ...})',
    )
    publish.add_argument("--user-id", help="envelope userId (required for user events; defaults to sender_id)")
    publish.add_argument("--session-id", help="envelope sessionId")
    publish.add_argument("--client-id", default="chat-events-cli", help="envelope clientId")
    publish.set_defaults(handler=publish_event)

    consume = sub.add_parser("consume", help="print a topic's envelopes as JSON, one per line")
    consume.add_argument("topic", help="topic name (declared or prefixed)")
    consume.add_argument("--from-beginning", action="store_true", help="start at the oldest record")
    consume.add_argument("--max", type=int, default=None, help="stop after N records")
    consume.add_argument("--timeout", type=float, default=None, help="stop after S seconds with no record")
    consume.add_argument("--meta", action="store_true", help="wrap each line with topic, partition, offset, key")
    consume.set_defaults(handler=consume_topic)


def _complete_envelope(data: dict[str, Any]) -> dict[str, Any]:
    """Fill the envelope fields a user need not type (id, version, name, namespace, timestamp)."""
    out = dict(data)
    payload = out.get("payload")
    if isinstance(payload, dict) and len(payload) == 1:
        ((name, _),) = payload.items()
        cls = EVENT_TYPES.get(name)
        if cls is not None:
            out.setdefault("name", name)
            out.setdefault("namespace", cls.NAMESPACE)
    out.setdefault("id", str(uuid.uuid4()))
    out.setdefault("version", CONTRACT_VERSION)
    out.setdefault("parentNamespace", PARENT_NAMESPACE)
    out.setdefault("timestamp", utc_timestamp())
    out.setdefault("traceId", uuid.uuid4().hex)
    return out


def envelope_from_cli(
    event_name: str, body: str, user_id: str | None, session_id: str | None, client_id: str | None
) -> Envelope:
    """Turn ``publish``'s arguments into an envelope (structure checked; validation at encode)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EventValidationError("", f"--json is not valid JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("payload"), dict):
        envelope = envelope_from_json(_complete_envelope(data))
        if envelope.name != event_name:
            raise EventValidationError("payload", f"holds {envelope.name}, but the command names {event_name}")
        return envelope
    if isinstance(data, dict) and event_name == PersonalChatSent.EVENT_NAME:
        data = {"message_id": str(uuid.uuid4()), **data}
    event = event_from_json(event_name, data)
    if isinstance(event, PersonalChatSent) and event.conversation_id is None:
        event = replace(event, conversation_id=conversation_id_of(event))
    if user_id is None and isinstance(event, PersonalChatSent):
        user_id = event.sender_id
    return new_envelope(event, user_id=user_id, session_id=session_id, client_id=client_id)


def publish_event(args: argparse.Namespace, settings: Settings) -> int:
    envelope = envelope_from_cli(args.event, args.body, args.user_id, args.session_id, args.client_id)
    codec = build_codec(settings)
    codec.encode(envelope)  # validate before touching the network
    target = resolve_target(settings)

    async def run() -> None:
        async with EventPublisher(settings, target, codec) as publisher:
            result = await publisher.publish(envelope)
        line = {"topic": result.topic, "partition": result.partition, "offset": result.offset, "id": envelope.id}
        print(orjson.dumps(line).decode(), flush=True)

    asyncio.run(run())
    return 0


def consume_topic(args: argparse.Namespace, settings: Settings) -> int:
    catalog = TopicCatalog(settings)
    try:
        topic = catalog.by_name(args.topic).name
    except KeyError:
        known = ", ".join(t.name for t in catalog.all())
        raise EventValidationError("topic", f"unknown topic {args.topic!r}; declared: {known}") from None
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
