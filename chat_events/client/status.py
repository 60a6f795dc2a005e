"""What a :class:`~chat_events.client.client.ChatClient` tells its application about its connection.

``on_connection=`` receives one :class:`ConnectionEvent` per change, on the event loop:

* ``lost``: the socket ended unexpectedly; with ``auto_reconnect`` a reconnect loop follows.
* ``reconnecting``: one reconnect attempt failed (``attempt`` counts them, ``detail`` says why);
  the next comes after a backoff of at most 5 s.
* ``reconnected``: signed in again on a new socket (``detail`` is the edge id); a sync of what
  was missed follows.
* ``ended``: the session is over for good (kicked, refused, closed by the edge with a final
  code); no reconnect will be tried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ConnectionState = Literal["lost", "reconnecting", "reconnected", "ended"]


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    state: ConnectionState
    detail: str = ""
    attempt: int = 0
    """For ``reconnecting``: how many attempts have failed so far (1, 2, ...)."""
