"""The one codec: Avro (fastavro) in the Confluent wire framing.

Frame: ``0x00`` magic byte, 4-byte big-endian schema id, Avro binary of the envelope. Any
Kafka tool with a Confluent-compatible registry (or the repository's manifest) decodes it.
Encoding validates first (:mod:`chat_events.events.validation`), so callers only ever see
:class:`EventValidationError`; decoding raises only :class:`EventDecodeError`.
"""

from __future__ import annotations

import struct
from io import BytesIO
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from chat_events.codec.registry import SchemaSource
from chat_events.codec.schemas import Schema
from chat_events.errors import ChatEventsError, EventDecodeError
from chat_events.events.types import (
    ENVELOPE_WIRE_NAMES,
    EVENT_TYPES,
    RECORD_TYPES,
    ChatMessage,
    Envelope,
    Event,
    field_shapes,
)
from chat_events.events.validation import validate_envelope

MAGIC = 0
_HEADER = struct.Struct(">bI")
HEADER_SIZE = _HEADER.size
UNION_NAMESPACE = "chat.events"

_EVENT_SHAPES = {name: field_shapes(cls) for name, cls in EVENT_TYPES.items()}
_EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    name: tuple(field for field, _ in shapes) for name, shapes in _EVENT_SHAPES.items()
}
_TUPLE_FIELDS: dict[str, tuple[str, ...]] = {
    name: tuple(field for field, shape in shapes if shape == "tuple") for name, shapes in _EVENT_SHAPES.items()
}
_RECORD_FIELDS: dict[str, tuple[str, ...]] = {
    name: tuple(field for field, shape in shapes if shape == "record") for name, shapes in _EVENT_SHAPES.items()
}
"""Fields holding a nested :class:`ChatMessage` (the only nested record type), per event."""
_MESSAGE_FIELDS = tuple(field for field, _ in field_shapes(ChatMessage))
_MESSAGE_TUPLE_FIELDS = tuple(field for field, shape in field_shapes(ChatMessage) if shape == "tuple")
_ENVELOPE_ITEMS = tuple(ENVELOPE_WIRE_NAMES.items())
if set(RECORD_TYPES) != {ChatMessage.RECORD_NAME}:  # pragma: no cover - a new record needs a converter
    raise RuntimeError("the Avro codec converts ChatMessage only; teach it the new record type")


def _message_to_avro(message: ChatMessage) -> dict[str, Any]:
    return {name: getattr(message, name) for name in _MESSAGE_FIELDS}


def _message_from_avro(body: dict[str, Any]) -> ChatMessage:
    for field in _MESSAGE_TUPLE_FIELDS:
        body[field] = tuple(body[field])
    return ChatMessage(**body)


def envelope_to_avro(envelope: Envelope) -> dict[str, Any]:
    """The Avro datum of an envelope; the payload union branch is picked by name. Nested records
    become dicts field by field (no ``dataclasses.asdict``: this is the publish hot path)."""
    event = envelope.payload
    name = event.EVENT_NAME
    body = {field: getattr(event, field) for field in _EVENT_FIELDS[name]}
    for field in _RECORD_FIELDS[name]:
        body[field] = _message_to_avro(body[field])
    record: dict[str, Any] = {wire: getattr(envelope, attr) for attr, wire in _ENVELOPE_ITEMS}
    record["payload"] = (f"{UNION_NAMESPACE}.{name}", body)
    return record


def _event_from_avro(name: str, body: dict[str, Any]) -> Event:
    for field in _TUPLE_FIELDS[name]:
        body[field] = tuple(body[field])
    for field in _RECORD_FIELDS[name]:
        body[field] = _message_from_avro(body[field])
    return EVENT_TYPES[name](**body)


def envelope_from_avro(record: dict[str, Any]) -> Envelope:
    full_name, body = record["payload"]
    name = full_name.rsplit(".", 1)[-1]
    if name not in EVENT_TYPES:
        raise EventDecodeError(f"unknown event {name!r} in payload")
    return Envelope(
        payload=_event_from_avro(name, body),
        id=record["id"],
        version=record["version"],
        name=record["name"],
        namespace=record["namespace"],
        parent_namespace=record["parentNamespace"],
        timestamp=record["timestamp"],
        client_id=record["clientId"],
        user_id=record["userId"],
        trace_id=record["traceId"],
        session_id=record["sessionId"],
        span_context=record["spanContext"],
    )


class AvroEnvelopeCodec:
    """Encode and decode envelopes. Writes with the current schema under ``writer_id``; reads
    any registered version, resolving older writers to the current reader schema."""

    def __init__(self, schema: Schema, source: SchemaSource, *, max_payload_bytes: int) -> None:
        self._schema = parse_schema(schema)
        self._source = source
        self.writer_id = source.writer_id(schema)
        self._header = _HEADER.pack(MAGIC, self.writer_id)
        self._max_payload_bytes = max_payload_bytes
        self._writers: dict[int, Any] = {self.writer_id: self._schema}

    def encode(self, envelope: Envelope, *, validate: bool = True) -> bytes:
        """Validate and encode; raises :class:`EventValidationError` naming the bad field.

        ``validate=False`` is for envelopes a stream processor derives from records it already
        decoded (validated when first published): the contract checks were a quarter of the
        worker's CPU. fastavro still refuses a value of the wrong type."""
        if validate:
            validate_envelope(envelope, max_payload_bytes=self._max_payload_bytes)
        buffer = BytesIO()
        buffer.write(self._header)
        schemaless_writer(buffer, self._schema, envelope_to_avro(envelope))
        return buffer.getvalue()

    def _writer_schema(self, schema_id: int) -> Any:
        parsed = self._writers.get(schema_id)
        if parsed is None:
            try:
                parsed = parse_schema(self._source.schema_by_id(schema_id))
            except ChatEventsError as exc:
                raise EventDecodeError(f"cannot resolve writer schema id {schema_id}: {exc}") from exc
            self._writers[schema_id] = parsed
        return parsed

    def decode(self, data: bytes) -> Envelope:
        """Decode one framed envelope; raises :class:`EventDecodeError` for anything else."""
        if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) < HEADER_SIZE + 1:
            raise EventDecodeError("not a Confluent-framed Avro record (too short)")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise EventDecodeError(f"bad magic byte {magic} (expected {MAGIC})")
        writer = self._writer_schema(schema_id)
        buffer = BytesIO(data)
        buffer.seek(HEADER_SIZE)
        reader = None if schema_id == self.writer_id else self._schema
        try:
            record = schemaless_reader(buffer, writer, reader, return_record_name=True)
            envelope = envelope_from_avro(record)  # type: ignore[arg-type]
        except EventDecodeError:
            raise
        except Exception as exc:  # fastavro raises many types for corrupt input
            raise EventDecodeError(f"corrupt Avro data for schema id {schema_id}: {type(exc).__name__}") from exc
        if buffer.tell() != len(data):
            raise EventDecodeError(f"{len(data) - buffer.tell()} trailing bytes after the envelope")
        return envelope
