"""Connections that have not yet earned their keep: counted per client address.

A connection is *pending* from the moment it is accepted until its HTTP request has been
answered or its WebSocket has signed in (or it closes). Each one holds a file descriptor and
memory while doing nothing useful, so one address may hold at most ``max_per_address`` of them;
the next is refused (see :mod:`chat_events.api.transport`). Pure bookkeeping, no IO.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

Peer = tuple[str, int]
"""A client's (address, port): one TCP connection."""

PRE_SIGN_IN_EXTENSION = "chat_events.pre_sign_in"
"""The ASGI scope extension through which the app says a WebSocket has signed in: its value is
``{"release": <callable>}`` (set by the edge's uvicorn protocol; absent under other servers)."""


class PendingConnections:
    """Pending connections by peer; ``max_per_address`` 0 = no limit."""

    def __init__(self, max_per_address: int) -> None:
        self.max_per_address = max_per_address
        self._peers: set[Peer] = set()
        self._by_address: dict[str, int] = {}

    def admit(self, peer: Peer | None) -> bool:
        """Count a new connection from ``peer``; False (not counted) if its address already has
        ``max_per_address`` pending. Connections without a peer (Unix sockets) are not counted."""
        if peer is None or peer in self._peers:
            return True
        address = peer[0]
        held = self._by_address.get(address, 0)
        if self.max_per_address and held >= self.max_per_address:
            return False
        self._peers.add(peer)
        self._by_address[address] = held + 1
        return True

    def release(self, peer: Peer | None) -> None:
        """This connection is no longer pending (answered, signed in or closed). Idempotent."""
        if peer is None or peer not in self._peers:
            return
        self._peers.discard(peer)
        address = peer[0]
        left = self._by_address[address] - 1
        if left:
            self._by_address[address] = left
        else:
            del self._by_address[address]

    def pending(self, address: str) -> int:
        return self._by_address.get(address, 0)

    def __len__(self) -> int:
        return len(self._peers)


def signed_in(scope: MutableMapping[str, Any]) -> None:
    """Tell the server that this WebSocket has signed in: it no longer counts as pending."""
    extension = scope.get("extensions", {}).get(PRE_SIGN_IN_EXTENSION)
    if extension is not None:
        release: Callable[[], None] = extension["release"]
        release()
