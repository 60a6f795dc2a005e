"""1:1 traffic as edges publish it, shared by the worker fault and exactly-once tests."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

from chat_events.events.conversations import conversation_id_of
from chat_events.events.factory import new_envelope
from chat_events.events.types import Envelope, PersonalChatSent
from chat_events.producers.publisher import EventPublisher


def pair_envelopes(start: int, stop: int, users: list[str]) -> list[Envelope]:
    """Messages ``start..stop-1`` among ``users`` in fixed pairs (u0<->u1, ...), either direction."""
    envelopes = []
    for i in range(start, stop):
        a, b = users[(2 * i) % len(users)], users[(2 * i + 1) % len(users)]
        sender, target = (a, b) if i % 3 else (b, a)
        event = PersonalChatSent(
            message_id=str(uuid.uuid4()), sender_id=sender, target_id=target, payload=f"m{i}", target_type="user"
        )
        envelopes.append(new_envelope(replace(event, conversation_id=conversation_id_of(event)), user_id=sender))
    return envelopes


def pairs_of(envelopes: list[Envelope]) -> dict[str, tuple[str, str]]:
    """Message id -> (sender, recipient) of ``envelopes``."""
    out: dict[str, tuple[str, str]] = {}
    for envelope in envelopes:
        event = envelope.payload
        assert isinstance(event, PersonalChatSent)
        out[event.message_id] = (event.sender_id, event.target_id)
    return out


async def send_pairs(
    publisher: EventPublisher, n: int, users: list[str], chunk: int = 250
) -> dict[str, tuple[str, str]]:
    """``n`` 1:1 messages among ``users`` in pairs, published in chunks; returns what was ACKed."""
    sent: dict[str, tuple[str, str]] = {}
    for start in range(0, n, chunk):
        envelopes = pair_envelopes(start, min(n, start + chunk), users)
        await publisher.publish_many(envelopes)
        sent.update(pairs_of(envelopes))
        await asyncio.sleep(0)
    return sent
