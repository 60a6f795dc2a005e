"""Edge node ids: what names an edge's delivery topic ``chat.edge.<edge_id>``.

An edge id is ``<name>-<8 hex digits>``: a readable name (given, or the host name) plus a random
suffix, so a restarted edge (new process, new sessions) never reads an old incarnation's topic.
It is 1-64 characters of ``[a-z0-9._-]`` starting with a letter or digit, so it is a valid Kafka
topic name component on every broker (Kafka allows ``[A-Za-z0-9._-]``; lower case avoids topics
that differ only by case, which collide on case-insensitive file systems).

No transport imports: the topic catalog and the event validation both use these functions.
"""

from __future__ import annotations

import re
import secrets
import socket

MAX_EDGE_ID = 64
SUFFIX_HEX = 8
EDGE_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
"""A valid edge id (any id matching it is accepted, not only ids from :func:`new_edge_id`)."""

_MAX_NAME = MAX_EDGE_ID - SUFFIX_HEX - 1
_NOT_ALLOWED = re.compile(r"[^a-z0-9._-]+")


def sanitize_edge_name(name: str) -> str:
    """``name`` reduced to a valid edge-id prefix: lower case, runs of other characters become
    ``-``, no leading/trailing separators, at most 55 characters; ``"edge"`` if nothing is left."""
    cleaned = _NOT_ALLOWED.sub("-", name.lower())
    cleaned = re.sub(r"-{2,}", "-", cleaned).strip("._-")
    cleaned = cleaned[:_MAX_NAME].rstrip("._-")
    return cleaned or "edge"


def new_edge_id(name: str | None = None) -> str:
    """A fresh edge id: ``<name or host name, sanitized>-<8 random hex digits>``."""
    base = sanitize_edge_name(name if name is not None else socket.gethostname())
    return f"{base}-{secrets.token_hex(SUFFIX_HEX // 2)}"


def is_edge_id(value: object) -> bool:
    return isinstance(value, str) and EDGE_ID_PATTERN.fullmatch(value) is not None


def validate_edge_id(edge_id: object) -> str:
    """Return ``edge_id`` if it is a valid edge id, else raise :class:`ValueError` saying why."""
    if not isinstance(edge_id, str):
        raise ValueError(f"edge id must be a string, got {type(edge_id).__name__}")
    if not is_edge_id(edge_id):
        raise ValueError(
            f"edge id {edge_id[:80]!r} must be 1-{MAX_EDGE_ID} characters of lower-case letters, digits, "
            "'.', '_', '-', starting with a letter or digit"
        )
    return edge_id
