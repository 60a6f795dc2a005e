"""The error policy of a stage batch (fake stage and sink: this is pure control flow)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from chat_events.codec import build_codec
from chat_events.codec.avro import AvroEnvelopeCodec
from chat_events.errors import EventValidationError, StoreUnavailableError
from chat_events.events.factory import new_envelope
from chat_events.events.types import RecordDeadLettered, UserBlocked, UserConnected
from chat_events.settings import Settings
from chat_events.streams.records import Incoming, Output, SourceRecord, StageResult
from chat_events.streams.stage import BatchProcessor


@pytest.fixture
def codec() -> AvroEnvelopeCodec:
    """The real codec (no broker needed)."""
    return build_codec(Settings())


class FlakyStage:
    """Echoes each record to ``out``; fails as scripted."""

    name = "flaky"
    accepts = frozenset({UserConnected.EVENT_NAME})

    def __init__(self, *, outages: int = 0, poison_user: str | None = None) -> None:
        self.outages = outages
        self.poison_user = poison_user
        self.calls: list[int] = []
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    async def handle(self, batch: Sequence[Incoming]) -> StageResult:
        self.calls.append(len(batch))
        if self.outages:
            self.outages -= 1
            raise StoreUnavailableError("store down")
        if any(i.envelope.user_id == self.poison_user for i in batch):
            raise EventValidationError("payload", "bad")
        return StageResult(outputs=[Output("out", b"k", i.envelope) for i in batch])


class Sink:
    def __init__(self) -> None:
        self.sent: list[Output] = []

    async def send_outputs(self, outputs: Sequence[Output]) -> None:
        self.sent.extend(outputs)


def records(codec: AvroEnvelopeCodec, users: Sequence[str]) -> list[SourceRecord]:
    out = []
    for offset, user in enumerate(users):
        envelope = new_envelope(UserConnected(edge_id="edge-1"), user_id=user, session_id="s")
        out.append(SourceRecord("in", 0, offset, user.encode(), codec.encode(envelope)))
    return out


async def no_sleep(_: float) -> None:
    return None


def processor(stage: FlakyStage, sink: Sink, codec: AvroEnvelopeCodec) -> BatchProcessor:
    return BatchProcessor(stage, codec, sink, dead_letter_topic="dlq", sleep=no_sleep)


async def test_retriable_failures_retry_the_whole_batch(codec: AvroEnvelopeCodec) -> None:
    stage, sink = FlakyStage(outages=3), Sink()
    await processor(stage, sink, codec).process(records(codec, ["a", "b"]))
    assert stage.calls == [2, 2, 2, 2] and stage.resets == 3
    assert [o.envelope.user_id for o in sink.sent] == ["a", "b"]


async def test_other_failures_dead_letter_only_the_culprit(codec: AvroEnvelopeCodec) -> None:
    stage, sink = FlakyStage(poison_user="b"), Sink()
    source = records(codec, ["a", "b", "c"])
    await processor(stage, sink, codec).process(source)
    assert stage.calls == [3, 1, 1, 1]
    assert [o.envelope.user_id for o in sink.sent if o.topic == "out"] == ["a", "c"]
    [dead] = [o for o in sink.sent if o.topic == "dlq"]
    assert isinstance(dead.envelope.payload, RecordDeadLettered)
    assert (dead.envelope.payload.source_offset, dead.envelope.payload.error_code) == (1, "invalid_event")
    assert dead.envelope.payload.value == source[1].value


async def test_undecodable_and_unexpected_records_never_reach_the_stage(codec: AvroEnvelopeCodec) -> None:
    stage, sink = FlakyStage(), Sink()
    other = codec.encode(new_envelope(UserBlocked(blocked_id="x"), user_id="a"))
    batch = [SourceRecord("in", 0, 0, None, b"\x00garbage"), SourceRecord("in", 0, 1, b"a", other)]
    result = await processor(stage, sink, codec).process(batch)
    assert stage.calls == []
    assert [r.error_code for r in result.rejects] == ["undecodable_event", "unexpected_event"]
    assert [o.topic for o in sink.sent] == ["dlq", "dlq"]
