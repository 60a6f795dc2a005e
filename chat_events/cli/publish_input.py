"""What ``chat-events publish`` makes of its arguments: the ``--json`` text (inline, ``@file``
or ``-`` for stdin) and the envelope it describes (pure; nothing here touches Kafka).

``--json`` holds either the event's fields or a whole envelope in its JSON form
(``{"payload": {"personalChatSent": {...}}, ...}``). Both forms are completed the same way:
what a user need not type is filled when missing — the envelope's id, version, name,
namespace, parentNamespace, timestamp and traceId; userId, sessionId and clientId from
``--user-id``, ``--session-id`` and ``--client-id`` (userId of a ``personalChatSent``
defaults to its ``sender_id``); and a ``personalChatSent``'s ``message_id`` (a new UUID) and
``conversation_id`` (from sender and target). Values given in the JSON are kept as given.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

import orjson

from chat_events.errors import EventValidationError, UsageError
from chat_events.events import (
    EVENT_TYPES,
    Envelope,
    Event,
    PersonalChatSent,
    conversation_id_of,
    envelope_from_json,
    event_from_json,
    new_envelope,
)
from chat_events.events.factory import CONTRACT_VERSION, utc_timestamp
from chat_events.events.types import PARENT_NAMESPACE
from chat_events.topics import EDGE_TOPIC_PREFIX, TopicCatalog


def publish_topic(catalog: TopicCatalog, envelope: Envelope) -> str:
    """The topic ``publish`` writes ``envelope`` to: its event's primary topic or, for an event
    delivered on one edge's own topic (``messageDispatched``, ``messageDispatchedBatch``), the
    topic of the edge it names. ``userTyping`` names no edge: a :class:`UsageError`."""
    topic = catalog.for_event(envelope.name)
    if not topic.spec.per_edge:
        return topic.name
    edge_id = getattr(envelope.payload, "edge_id", None)
    if not isinstance(edge_id, str):
        raise UsageError(
            f"{envelope.name} goes to one edge's delivery topic ({EDGE_TOPIC_PREFIX}<edge_id>) and names no "
            "edge: publish cannot route it"
        )
    try:
        return catalog.edge_topic(edge_id).name
    except ValueError as exc:
        raise EventValidationError(f"payload.{envelope.name}.edge_id", str(exc)) from None


def read_json_argument(value: str, stdin: TextIO) -> str:
    """The text of ``--json``: ``-`` reads stdin, ``@path`` the file, anything else is the JSON."""
    if value == "-":
        return stdin.read()
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UsageError(f"--json {value}: cannot read {str(path)!r}: {reason}") from None
    return value


def _with_message_fields(event: Event) -> Event:
    """A ``personalChatSent`` gets its ``conversation_id`` when it has none."""
    if isinstance(event, PersonalChatSent) and event.conversation_id is None:
        return replace(event, conversation_id=conversation_id_of(event))
    return event


def _event_fields(event_name: str, fields: Any) -> Any:
    """A ``personalChatSent``'s fields get a new ``message_id`` when they have none."""
    if isinstance(fields, dict) and event_name == PersonalChatSent.EVENT_NAME and "message_id" not in fields:
        return {"message_id": str(uuid.uuid4()), **fields}
    return fields


def _complete_envelope(data: dict[str, Any], ids: dict[str, str | None]) -> dict[str, Any]:
    """Fill the envelope fields a user need not type; ``ids`` are userId, sessionId and clientId
    from the command line (None = not given)."""
    out = dict(data)
    payload = out.get("payload")
    if isinstance(payload, dict) and len(payload) == 1:
        ((name, fields),) = payload.items()
        cls = EVENT_TYPES.get(name)
        if cls is not None:
            out["payload"] = {name: _event_fields(name, fields)}
            out.setdefault("name", name)
            out.setdefault("namespace", cls.NAMESPACE)
    out.setdefault("id", str(uuid.uuid4()))
    out.setdefault("version", CONTRACT_VERSION)
    out.setdefault("parentNamespace", PARENT_NAMESPACE)
    out.setdefault("timestamp", utc_timestamp())
    out.setdefault("traceId", uuid.uuid4().hex)
    for wire, value in ids.items():
        if out.get(wire) is None and value is not None:
            out[wire] = value
    return out


def envelope_from_cli(
    event_name: str, body: str, user_id: str | None, session_id: str | None, client_id: str | None
) -> Envelope:
    """Turn ``publish``'s arguments into an envelope (structure checked; validation at encode)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EventValidationError("", f"--json is not valid JSON: {exc}") from None
    ids = {"userId": user_id, "sessionId": session_id, "clientId": client_id}
    if isinstance(data, dict) and isinstance(data.get("payload"), dict):
        envelope = envelope_from_json(_complete_envelope(data, ids))
        if envelope.name != event_name:
            raise EventValidationError("payload", f"holds {envelope.name}, but the command names {event_name}")
        event = _with_message_fields(envelope.payload)
        if envelope.user_id is None and isinstance(event, PersonalChatSent):
            return replace(envelope, payload=event, user_id=event.sender_id)
        return replace(envelope, payload=event)
    event = _with_message_fields(event_from_json(event_name, _event_fields(event_name, data)))
    if user_id is None and isinstance(event, PersonalChatSent):
        user_id = event.sender_id
    return new_envelope(event, user_id=user_id, session_id=session_id, client_id=client_id)
