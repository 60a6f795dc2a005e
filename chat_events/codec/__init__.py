"""Avro envelopes in the Confluent framing, with schema ids from a registry or the manifest."""

from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.codec.factory import build_codec

__all__ = ["AvroEnvelopeCodec", "build_codec"]
