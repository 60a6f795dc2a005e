"""One WebSocket from accept to close: sign-in, then frames in, replies and pushes out.

Frames are read one at a time, so a socket's sends are enqueued to Kafka in the order they
arrived; their broker acknowledgements are awaited concurrently (pipelining), and each ``send``
is answered only once Kafka has it (an ACK means durable). Nothing invalid or unauthorised is
ever enqueued. Logs name the frame type and code, never bodies or tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from chat_events.api.connection import Connection
from chat_events.api.edge import CONFLICT_LOGIN_MESSAGE, EdgeNode
from chat_events.api.handlers import FrameHandlers
from chat_events.api.pending import signed_in
from chat_events.api.protocol import (
    PROTOCOL_VERSION,
    Close,
    Code,
    ProtocolError,
    SignIn,
    error_frame,
    header_device_id,
    output_frame,
    parse_frame,
)
from chat_events.api.tokens import Claims, TokenError, verify_token
from chat_events.errors import ChatEventsError
from chat_events.store.progress import resume_seq

log = logging.getLogger(__name__)

ABNORMAL_CLOSURE = 1006
"""The close code of a socket that ended without a close handshake (the peer went away)."""

SERVER_CLOSE_REASONS: dict[int, str] = {
    Close.NORMAL: "server_closed",
    Close.GOING_AWAY: "edge_shutdown",
    Close.TOO_BIG: "frame_too_large",
    Close.INTERNAL: "internal_error",
    Close.TRY_AGAIN_LATER: "too_slow",
    Close.IDLE_TIMEOUT: "idle_timeout",
    Close.CONFLICT_LOGIN: "conflict_login",
}
"""``userDisconnected.reason`` of a signed-in socket the edge closed, by close code; any other
code (1008, 4001, ...) closed it for a protocol error."""

Disconnect = tuple[str, int, bool]
"""What a session's ``userDisconnected`` says: reason, close code, forced."""


def server_closed(code: int) -> Disconnect:
    """The ``userDisconnected`` of a socket the edge decided to close with ``code``."""
    return SERVER_CLOSE_REASONS.get(code, "protocol_error"), int(code), True


class WsSession:
    """One socket's reader. Nothing per socket runs while it is silent but this coroutine,
    waiting for the next frame: no timer (the edge's :class:`IdleSweep` wakes it when it is silent
    too long) and no writer task (the :class:`Connection` starts one only while frames wait)."""

    __slots__ = ("_disconnect", "_waiting", "edge", "settings", "socket")

    def __init__(self, edge: EdgeNode, socket: WebSocket) -> None:
        self.edge = edge
        self.socket = socket
        self.settings = edge.settings
        self._disconnect: Disconnect = ("client_closed", Close.NORMAL, False)
        self._waiting: asyncio.Timeout | None = None  # while the reader waits: how _wake interrupts it

    async def run(self) -> None:
        conn = await self._sign_in()
        if conn is None:
            return
        signed_in(self.socket.scope)  # no longer a pending connection of its address (transport.py)
        handlers = FrameHandlers(self.edge, conn)
        try:
            await self._serve(conn, handlers)
        finally:
            await handlers.drain()
            await self._end(conn)

    async def _end(self, conn: Connection, *, close: bool = True) -> None:
        """Forget a session's socket, close it (``close``: unless it is gone already) and announce
        the end with ``self._disconnect`` to the workers, who were told of it by its userConnected."""
        registered = self.edge.registry.remove(conn)
        self.edge.presence.drop(conn)
        if close:
            if conn.close_code is None:
                conn.close(Close.NORMAL)
            await conn.wait_closed(1.0)
        await conn.stop_writer()
        if registered or conn.close_code == Close.CONFLICT_LOGIN:
            reason, code, forced = self._disconnect
            if conn.close_code == Close.CONFLICT_LOGIN:
                reason, code, forced = "conflict_login", Close.CONFLICT_LOGIN, True
            if not self.edge.stopping:  # a stopping edge announces every session itself
                with contextlib.suppress(ChatEventsError):
                    await self.edge.publish_disconnects([conn], reason=reason, code=code, forced=forced)

    # --- sign-in ------------------------------------------------------------------------

    async def _sign_in(self) -> Connection | None:
        header = self.socket.headers.get("authorization", "")
        try:
            if header:
                scheme, _, token = header.partition(" ")
                if scheme.lower() != "bearer" or not token:
                    raise ProtocolError(Code.UNAUTHORIZED, "Authorization must be 'Bearer <token>'")
                request = SignIn(token.strip(), header_device_id(self.socket.headers.get("x-device-id")))
                request_id = None
            else:
                request, request_id = await self._first_frame()
            claims = self._verify(request.token, request_id)
        except ProtocolError as exc:
            log.info("sign-in refused: code %d", exc.code)
            await self._refuse(exc)
            return None
        return await self._open(claims, request.device_id, request_id)

    async def _first_frame(self) -> tuple[SignIn, Any]:
        try:
            async with asyncio.timeout(self.settings.ws_sign_in_timeout_s):
                text = await self._receive_text()
        except TimeoutError:
            raise ProtocolError(Code.UNAUTHORIZED, "sign in first", close=Close.SIGN_IN_TIMEOUT) from None
        if text is None:
            raise ProtocolError(Code.UNAUTHORIZED, "closed before signing in", close=Close.NORMAL)
        frame = parse_frame(text, max_payload_bytes=self.settings.max_payload_bytes)
        if not isinstance(frame.request, SignIn):
            raise ProtocolError(
                Code.UNAUTHORIZED,
                "the first frame must be sign_in",
                close=Close.UNAUTHORIZED,
                request_id=frame.request_id,
            )
        return frame.request, frame.request_id

    def _verify(self, token: str, request_id: Any) -> Claims:
        try:
            return verify_token(token, self.settings.auth_secret.get_secret_value())
        except TokenError as exc:
            code, close = (
                (Code.SESSION_EXPIRED, Close.SESSION_EXPIRED)
                if exc.expired
                else (Code.UNAUTHORIZED, Close.UNAUTHORIZED)
            )
            raise ProtocolError(code, str(exc), close=close, frame_type="sign_in", request_id=request_id) from None

    async def _refuse(self, exc: ProtocolError) -> None:
        if exc.frame_type == "error":
            exc.frame_type = "sign_in"
        with contextlib.suppress(Exception):
            await self.socket.send_text(error_frame(exc))
            await self.socket.close(exc.close or Close.UNAUTHORIZED, exc.message[:120])

    async def _open(self, claims: Claims, device_id: str, request_id: Any) -> Connection | None:
        edge = self.edge
        conn = Connection(
            user_id=claims.user_id,
            device_id=device_id,
            session_id=str(uuid.uuid4()),
            socket=self.socket,
            queue_max=self.settings.ws_outbound_queue,
        )
        admission = edge.registry.add(conn)
        if not admission.admitted:
            await self._refuse(
                ProtocolError(
                    Code.TOO_MANY_CONNECTIONS,
                    f"at most {self.settings.max_connections_per_user} connections per user",
                    close=Close.TOO_MANY_CONNECTIONS,
                    request_id=request_id,
                )
            )
            return None
        if admission.replaced is not None:
            old = admission.replaced
            old.push(output_frame("kicked", code=Code.CONFLICT_LOGIN, message=CONFLICT_LOGIN_MESSAGE))
            old.close(Close.CONFLICT_LOGIN, "conflict login")
        announced = False
        try:
            await edge.publisher.publish_user_connected(
                user_id=conn.user_id, session_id=conn.session_id, edge_id=edge.edge_id, device_id=device_id
            )
            announced = True
            registered = await edge.await_session(conn.user_id, conn.session_id)
            last = (await edge.store.max_user_seqs([conn.user_id])).get(conn.user_id, 0)
            progress = (await edge.store.device_progress([(conn.user_id, device_id)])).get((conn.user_id, device_id))
        except ChatEventsError as exc:
            log.warning("sign-in of a session failed: %s", exc.code)
            if not announced:
                edge.registry.remove(conn)
            await self._refuse(
                ProtocolError(Code.UNAVAILABLE, "try again shortly", close=Close.TRY_AGAIN_LATER, request_id=request_id)
            )
            if announced:  # the workers were told of the session: end it there too
                self._disconnect = ("sign_in_failed", Close.TRY_AGAIN_LATER, True)
                await self._end(conn, close=False)
            return None
        if not registered:
            log.warning("session of %s not registered by the workers in time; the client syncs", conn.user_id)
        conn.pushed_seq = last
        conn.stored_acked_seq = resume_seq(progress.acked_seq if progress is not None else 0, last)
        data = {
            "user_id": conn.user_id,
            "session_id": conn.session_id,
            "edge_id": edge.edge_id,
            "device_id": device_id,
            "heartbeat_s": self.settings.ws_heartbeat_s,
            "max_frame_bytes": self.settings.ws_max_frame_bytes,
            "max_payload_bytes": self.settings.max_payload_bytes,
            "last_user_seq": last,
            "acked_seq": conn.stored_acked_seq,
            "protocol": PROTOCOL_VERSION,
            "expires_at_ms": claims.expires_at_ms,
        }
        try:
            await self.socket.send_text(output_frame("sign_in", request_id=request_id, data=data))
        except Exception as exc:  # the peer went away: forget the session and end it with the workers
            log.info("peer of %s gone before the sign-in answer: %r", conn.user_id, exc)
            if conn.close_code is not None:  # the edge had closed it meanwhile (kicked, stopping)
                self._disconnect = server_closed(conn.close_code)
            else:
                self._disconnect = ("client_closed", _lost_code(exc), False)
            await self._end(conn, close=False)
            return None
        conn.start()  # deliveries queued since registration follow the sign-in answer
        return conn

    # --- frames -------------------------------------------------------------------------

    async def _serve(self, conn: Connection, handlers: FrameHandlers) -> None:
        sweep = self.edge.idle_sweep
        conn.wake = self._wake
        conn.idle_since_s = time.monotonic()
        sweep.watch(conn)
        try:
            while True:
                if conn.closed:  # kicked, too slow, the edge is stopping; or a write failed
                    self._disconnect = (
                        server_closed(conn.close_code)
                        if conn.close_code is not None
                        else ("client_closed", ABNORMAL_CLOSURE, False)  # the peer went away
                    )
                    return
                try:
                    async with asyncio.timeout(None) as self._waiting:
                        text = await self._receive_text()
                except TimeoutError:  # woken: closed (handled above), or silent too long (the sweep)
                    if conn.closed:
                        continue
                    conn.close(Close.IDLE_TIMEOUT, "no heartbeat")
                    self._disconnect = server_closed(conn.close_code or Close.IDLE_TIMEOUT)
                    return
                finally:
                    self._waiting = None
                if text is None:
                    if conn.close_code is not None:
                        # The edge closed first (too slow, a protocol error, ...); uvicorn answers the
                        # close with a ``websocket.disconnect`` the reader may see before it looks at
                        # ``conn.closed``: the end is still the edge's decision, not the client's.
                        self._disconnect = server_closed(conn.close_code)
                    return
                limit = self.settings.ws_max_frame_bytes
                if len(text) > limit // 4 and len(text.encode()) > limit:
                    conn.push(error_frame(ProtocolError(Code.FRAME_TOO_LARGE, "frame too large")))
                    conn.close(Close.TOO_BIG, "frame too large")
                    self._disconnect = server_closed(conn.close_code or Close.TOO_BIG)
                    return
                await self._handle(conn, handlers, text)
                conn.idle_since_s = time.monotonic()
        finally:
            sweep.unwatch(conn)
            conn.wake = None

    def _wake(self) -> None:
        """Interrupt the reader's wait for a frame (it then looks at why), if it is waiting."""
        waiting = self._waiting
        if waiting is not None and not waiting.expired():
            waiting.reschedule(0)

    async def _handle(self, conn: Connection, handlers: FrameHandlers, text: str) -> None:
        started = time.perf_counter()
        frame_type = "?"
        try:
            frame = parse_frame(text, max_payload_bytes=self.settings.max_payload_bytes)
            frame_type = frame.type
            reply = await handlers.handle(frame)
            if reply is not None:
                conn.push(reply)
        except ProtocolError as exc:
            log.info("refused %s frame from %s: code %d", frame_type, conn.user_id, exc.code)
            conn.push(error_frame(exc))
            if exc.close is not None:
                conn.close(exc.close, exc.message[:120])
        except Exception:
            log.exception(
                "%s frame from %s failed after %.1f ms",
                frame_type,
                conn.user_id,
                (time.perf_counter() - started) * 1000,
            )
            conn.push(
                output_frame(frame_type if frame_type != "?" else "error", code=Code.INTERNAL, message="internal error")
            )

    async def _receive_text(self) -> str | None:
        """The next text (or UTF-8 binary) frame; None once the peer has closed."""
        if self.socket.application_state != WebSocketState.CONNECTED:
            return None
        try:
            message = await self.socket.receive()
        except WebSocketDisconnect as exc:
            self._disconnect = ("client_closed", int(exc.code), False)
            return None
        except RuntimeError:
            return None
        if message["type"] == "websocket.disconnect":
            code = int(message.get("code") or Close.NORMAL)
            # uvicorn enforces ws_max_size (= ws_max_frame_bytes) itself: it fails the connection
            # with 1009 and reports that as a disconnect, before the app sees the frame.
            self._disconnect = server_closed(code) if code == Close.TOO_BIG else ("client_closed", code, False)
            return None
        text = message.get("text")
        if text is None:
            raw = message.get("bytes") or b""
            try:
                text = raw.decode()
            except UnicodeDecodeError:
                return '"binary frame"'  # parses as a non-object: BAD_FRAME
        return str(text)


def _lost_code(exc: Exception) -> int:
    """The close code of a send that failed because the peer went away (starlette: 1006)."""
    return int(exc.code) if isinstance(exc, WebSocketDisconnect) else ABNORMAL_CLOSURE
