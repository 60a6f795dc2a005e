"""Blocking and unblocking (issue 16, item 5), for the ``block`` / ``unblock`` frames and the
``/v1/blocks`` routes alike: check (:mod:`chat_events.api.block_rules`), publish
``userBlocked`` / ``userUnblocked`` to ``chat.user-events`` keyed by the blocker (the sessions
stage stores it, last writer by time), then wait until the store shows it: after "blocked" the
fan-out, which reads the store, delivers nothing more from that user. If the workers are slow
the answer says ``pending`` (HTTP 202) after :data:`APPLY_WAIT_S`. Nothing is published for a
refused request, nor for one that changes nothing (blocking someone blocked already)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from chat_events.api.block_frames import Block, Unblock
from chat_events.api.block_rules import block_changes, block_target_problem
from chat_events.api.connection import Connection
from chat_events.api.conversation_actions import ActionRefused
from chat_events.api.edge import EdgeNode
from chat_events.api.protocol import Code, Frame, ProtocolError, error_frame, output_frame
from chat_events.errors import ChatEventsError
from chat_events.events.factory import new_envelope
from chat_events.events.types import UserBlocked, UserUnblocked
from chat_events.streams.records import timestamp_ms

APPLY_WAIT_S = 5.0
"""Longest a block waits for the store to show it (as groups over HTTP do)."""


@dataclass(frozen=True, slots=True)
class BlockOutcome:
    user_id: str
    blocked: bool
    since_ms: int | None
    """When the block took effect (None once unblocked)."""
    applied: bool
    """False: published, but the store did not show it within :data:`APPLY_WAIT_S`."""

    def view(self) -> dict[str, Any]:
        body: dict[str, Any] = {"user_id": self.user_id, "blocked": self.blocked, "since_ms": self.since_ms}
        return body if self.applied else {**body, "status": "pending"}


async def set_block(
    edge: EdgeNode, user_id: str, target_id: str, *, active: bool, wait_s: float = APPLY_WAIT_S
) -> BlockOutcome:
    """Block (``active``) or unblock ``target_id`` for ``user_id``."""
    problem = block_target_problem(user_id, target_id)
    if problem is not None:
        raise ActionRefused(422, Code.INVALID_FIELD, f"user_id: {problem}", "user_id")
    current = await edge.store.blocks_by(user_id)
    if not block_changes(current, target_id, active=active):  # already so: idempotent
        return BlockOutcome(target_id, active, current.get(target_id), applied=True)
    event = UserBlocked(blocked_id=target_id) if active else UserUnblocked(blocked_id=target_id)
    envelope = new_envelope(event, user_id=user_id)
    try:
        await edge.publisher.publish(envelope)
    except ChatEventsError as exc:
        raise ActionRefused(503, Code.UNAVAILABLE, f"not accepted ({exc.code}); retry") from None
    at_ms = timestamp_ms(envelope.timestamp)
    applied = await _until_stored(edge, user_id, target_id, active=active, wait_s=wait_s)
    edge.blocker_cache.forget(target_id)
    return BlockOutcome(target_id, active, at_ms if active else None, applied)


async def block_frame(edge: EdgeNode, conn: Connection, frame: Frame) -> None:
    """Do a ``block`` / ``unblock`` frame and push its answer (run as a task of the socket: the
    wait for the store does not hold up the socket's other frames)."""
    request = frame.request
    assert isinstance(request, Block | Unblock)
    try:
        outcome = await set_block(edge, conn.user_id, request.user_id, active=isinstance(request, Block))
    except ActionRefused as exc:
        error = ProtocolError(
            exc.code,
            exc.message,
            data={"field": exc.field} if exc.field else None,
            frame_type=frame.type,
            request_id=frame.request_id,
        )
        conn.push(error_frame(error))
        return
    conn.push(output_frame(frame.type, request_id=frame.request_id, data=outcome.view()))


async def _until_stored(edge: EdgeNode, user_id: str, target_id: str, *, active: bool, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    delay = 0.005
    while (target_id in await edge.store.blocks_by(user_id)) != active:
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(0.1, delay * 2)
    return True
