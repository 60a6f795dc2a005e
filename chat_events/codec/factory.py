"""Building the codec from settings: the one place that picks the schema id source."""

from __future__ import annotations

from pathlib import Path

from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.codec.registry import schema_source_for
from chat_events.codec.schemas import load_current_schema
from chat_events.settings import Settings
from chat_events.topics import TopicCatalog


def build_codec(settings: Settings, schema_dir: Path | None = None) -> AvroEnvelopeCodec:
    """The codec for these settings. With ``schema_registry_url`` set this registers the
    envelope schema under every envelope topic's ``-value`` subject (blocking HTTP; call it at
    start-up, or via ``asyncio.to_thread`` inside a running loop)."""
    subjects = [f"{spec.name}-value" for spec in TopicCatalog(settings).envelope_topics()]
    source = schema_source_for(settings.schema_registry_url, subjects, schema_dir)
    return AvroEnvelopeCodec(load_current_schema(schema_dir), source, max_payload_bytes=settings.max_payload_bytes)
