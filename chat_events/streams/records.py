"""What flows through a stage: consumed records in, envelopes to send out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from chat_events.events.types import Envelope

_OUTPUT_IDS = uuid.UUID("6f1d3c2e-8a4b-5c7d-9e0f-a1b2c3d4e5f6")


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One Kafka record as consumed (position + raw bytes; decoding may still fail)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True)
class Incoming:
    """A decoded record."""

    record: SourceRecord
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class Output:
    """An envelope to send. ``partition`` None = chosen from ``key`` (murmur2)."""

    topic: str
    key: bytes
    envelope: Envelope
    partition: int | None = None


@dataclass(frozen=True, slots=True)
class Reject:
    """A record the stage refuses for good; it goes to the dead-letter topic."""

    record: SourceRecord
    error_code: str
    reason: str


@dataclass(slots=True)
class StageResult:
    outputs: list[Output] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    def extend(self, other: StageResult) -> None:
        self.outputs.extend(other.outputs)
        self.rejects.extend(other.rejects)


def output_envelope_id(source_envelope_id: str, stage: str, part: str = "") -> str:
    """Deterministic id of an output envelope: a replayed input yields outputs with the same
    ids, so any consumer can drop repeats by envelope id."""
    return str(uuid.uuid5(_OUTPUT_IDS, f"{source_envelope_id}/{stage}/{part}"))


def timestamp_ms(timestamp: str) -> int:
    """Milliseconds since the epoch of an envelope timestamp (RFC 3339, validated upstream)."""
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


async def no_maxima() -> dict[str, int]:
    """No seq maxima to read: what a stage gathers in place of ``max_*_seqs`` when every key of
    the batch is already known to its counters."""
    return {}
