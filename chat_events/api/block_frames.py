"""Parsing of the ``block`` and ``unblock`` frames (issue 16, item 5), registered in the parser
table of :mod:`chat_events.api.protocol`; done by :mod:`chat_events.api.block_actions`.

Input::

    {"type": "block", "request_id": 1, "data": {"user_id": "bob"}}
    {"type": "unblock", "request_id": 2, "data": {"user_id": "bob"}}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chat_events.api.protocol import _id


@dataclass(frozen=True, slots=True)
class Block:
    """Stop receiving ``user_id``'s messages, typing and room pushes; refuse their direct sends."""

    user_id: str


@dataclass(frozen=True, slots=True)
class Unblock:
    """Lift the block on ``user_id``: their new messages arrive again (docs/protocol.md#blocks)."""

    user_id: str


def parse_block(data: dict[str, Any], _max_payload_bytes: int) -> Block:
    return Block(_id(data, "user_id"))


def parse_unblock(data: dict[str, Any], _max_payload_bytes: int) -> Unblock:
    return Unblock(_id(data, "user_id"))
