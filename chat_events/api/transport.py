"""uvicorn's HTTP and WebSocket protocols with two guards against idle connections (slowloris).

uvicorn holds a connection whose request line and headers never complete for as long as the
client likes (its keep-alive timeout only runs between requests, and any byte cancels it). The
edge's protocols add:

* **a header deadline**: a request's line and headers must be complete within
  ``header_timeout_s`` of the connection (or, on a kept-alive connection, of the next request's
  first byte); otherwise the edge answers 408 and closes the connection;
* **a cap on pending connections per client address** (:class:`PendingConnections`): a
  connection counts from accept until its HTTP request is answered, or its WebSocket has signed
  in (the app calls :func:`chat_events.api.pending.signed_in`), or it closes. Past the cap the
  edge answers 429 (code 10) and closes it at once.

Both are passed to uvicorn as ``http=`` / ``ws=`` classes with an :class:`EdgeConfig`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request as HandshakeRequest

from chat_events.api.pending import PRE_SIGN_IN_EXTENSION, PendingConnections
from chat_events.api.protocol import Code

log = logging.getLogger(__name__)


class EdgeConfig(uvicorn.Config):
    """uvicorn's config plus what the guarded protocols need."""

    def __init__(self, app: Any, *, header_timeout_s: float, max_pending_per_address: int, **kwargs: Any) -> None:
        super().__init__(app, http=GuardedHttpProtocol, ws=GuardedWebSocketProtocol, **kwargs)
        self.header_timeout_s = header_timeout_s
        self.pending = PendingConnections(max_pending_per_address)


def _response(status: str, code: Code, message: str) -> bytes:
    body = orjson.dumps({"code": int(code), "message": message})
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


def _guards(config: Any) -> tuple[PendingConnections, float | None]:
    if isinstance(config, EdgeConfig):
        return config.pending, config.header_timeout_s
    return PendingConnections(0), None  # a plain uvicorn.Config: no guards


class GuardedHttpProtocol(HttpToolsProtocol):
    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._pending, self._header_timeout_s = _guards(config)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self._pending.admit(self.client):
            log.info("refused a connection from %s: too many pending", self.client[0] if self.client else "?")
            message = f"more than {self._pending.max_per_address} connections from this address are not signed in"
            transport.write(_response("429 Too Many Requests", Code.TOO_MANY_CONNECTIONS, message))
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._pending.release(self.client)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.cycle is None or self.cycle.response_complete:  # between requests: headers are due
            self._arm()
        super().data_received(data)

    def on_message_begin(self) -> None:
        self._arm()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        self._pending.release(self.client)  # answered: no longer pending
        super().on_response_complete()

    def _arm(self) -> None:
        if self._header_timeout_s is not None and self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self._header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # a pipelined request dawdles: close after this response
            return
        message = f"the request line and headers must arrive within {self._header_timeout_s:g} s"
        self.transport.write(_response("408 Request Timeout", Code.BAD_FRAME, message))
        self.transport.close()


class GuardedWebSocketProtocol(WebSocketsSansIOProtocol):
    """Counts as pending until the app says the socket signed in (or it closes)."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._pending, _ = _guards(config)

    def handle_connect(self, event: HandshakeRequest) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # only once the handshake was accepted
        if scope is not None:
            release = functools.partial(self._pending.release, self.client)
            scope["extensions"][PRE_SIGN_IN_EXTENSION] = {"release": release}

    def connection_lost(self, exc: Exception | None) -> None:
        self._pending.release(self.client)
        super().connection_lost(exc)
