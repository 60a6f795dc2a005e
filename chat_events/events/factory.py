"""Filling an envelope around an event: id, timestamp, trace id, name and namespace."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from chat_events.events.types import PARENT_NAMESPACE, Envelope, Event

CONTRACT_VERSION = 1
"""Major version of every current event contract (compatible schema changes keep it)."""


def utc_timestamp(moment: datetime | None = None) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2019-08-24T14:15:22.123Z``."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def new_envelope(
    event: Event,
    *,
    user_id: str | None = None,
    client_id: str | None = None,
    session_id: str | None = None,
    trace_id: str | None = None,
    span_context: str | None = None,
    timestamp: str | None = None,
    envelope_id: str | None = None,
) -> Envelope:
    """Wrap ``event`` in a fresh envelope (new uuid id; new trace id unless one is passed on)."""
    return Envelope(
        payload=event,
        id=envelope_id or str(uuid.uuid4()),
        version=CONTRACT_VERSION,
        name=event.EVENT_NAME,
        namespace=event.NAMESPACE,
        parent_namespace=PARENT_NAMESPACE,
        timestamp=timestamp or utc_timestamp(),
        client_id=client_id,
        user_id=user_id,
        trace_id=trace_id or uuid.uuid4().hex,
        session_id=session_id,
        span_context=span_context,
    )
