"""How ``up`` knows its edge is ready: the edge's own ``/readyz`` answers 200.

The edge's ready line alone is not enough: it can come before uvicorn listens, and 200 from
``/readyz`` means more than a listening port (the workers would register a sign-in now; see
``api/worker_watch.py``). The answer must carry the edge id the child printed, so a server of
somebody else's on that port never counts.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx

from chat_events.supervisor import Child

EDGE_ID = re.compile(r"\bedge (\S+) ready \(delivery topic")
_WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def edge_id_of(line: str | None) -> str | None:
    """The edge id in the edge's ready line (pure)."""
    found = EDGE_ID.search(line or "")
    return found.group(1) if found else None


def readyz_confirms(status: int, body: object, edge_id: str) -> bool:
    """Whether a ``/readyz`` answer says that edge ``edge_id`` is ready (pure)."""
    return status == 200 and isinstance(body, dict) and body.get("ready") is True and body.get("edge_id") == edge_id


def readyz_url(host: str, port: int) -> str:
    """Where to ask an edge listening on ``host:port`` (a wildcard address: on loopback)."""
    host = _WILDCARDS.get(host, host)
    return f"http://[{host}]:{port}/readyz" if ":" in host else f"http://{host}:{port}/readyz"


def edge_ready_check(host: str, port: int) -> Callable[[Child], bool]:
    """The supervisor's ``ready_check`` for an edge on ``host:port``."""
    url = readyz_url(host, port)

    def check(child: Child) -> bool:
        edge_id = edge_id_of(child.ready_line)
        if edge_id is None:
            return False
        answer = httpx.get(url, timeout=2.0)
        return readyz_confirms(answer.status_code, answer.json(), edge_id)

    return check
