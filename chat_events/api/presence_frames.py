"""Parsing of the ``presence_subscribe`` and ``presence_unsubscribe`` frames (issue 16, item 6),
registered in the parser table of :mod:`chat_events.api.protocol`; done by
:mod:`chat_events.api.presence_actions`.

Input::

    {"type": "presence_subscribe", "request_id": 1, "data": {"user_ids": ["bob", "carol"]}}
    {"type": "presence_unsubscribe", "request_id": 2, "data": {"user_ids": ["bob"]}}
    {"type": "presence_unsubscribe", "request_id": 3, "data": {}}   # everyone
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chat_events.api.presence_rules import user_ids_problem
from chat_events.api.protocol import _Invalid


@dataclass(frozen=True, slots=True)
class PresenceSubscribe:
    """Watch these users' presence: answered with their current presence, then ``presence`` pushes."""

    user_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PresenceUnsubscribe:
    """Stop watching these users (None: everyone this socket watches)."""

    user_ids: tuple[str, ...] | None


def _user_ids(data: dict[str, Any]) -> tuple[str, ...]:
    raw = data.get("user_ids")
    problem = user_ids_problem(raw)
    if problem is not None:
        raise _Invalid(*problem)
    assert isinstance(raw, list)
    return tuple(dict.fromkeys(raw))


def parse_presence_subscribe(data: dict[str, Any], _max_payload_bytes: int) -> PresenceSubscribe:
    return PresenceSubscribe(_user_ids(data))


def parse_presence_unsubscribe(data: dict[str, Any], _max_payload_bytes: int) -> PresenceUnsubscribe:
    return PresenceUnsubscribe(None if data.get("user_ids") is None else _user_ids(data))
