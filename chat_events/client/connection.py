"""One signed-in WebSocket to an edge: request/reply correlation by ``request_id``, a reader task
that hands server pushes to a callback, and heartbeats.

A connection never reconnects by itself; :class:`~chat_events.client.client.ChatClient` replaces
a lost connection with a new one. When the socket ends, every request waiting on it fails with
:class:`ConnectionLost` and ``on_close`` is called once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.typing import Origin

from chat_events.api.protocol import Close, Code
from chat_events.client.errors import ChatError, ConnectionLost
from chat_events.client.frames import OutputFrame, RequestId, decode_output, encode_input
from chat_events.client.models import SignInInfo

logger = logging.getLogger("chat_events.client")

MAX_INCOMING_BYTES = 64 * 1024 * 1024
"""Largest frame the client accepts: a sync page of 500 messages can be megabytes."""

_SIGN_IN_CLOSES: dict[int, Code] = {Close.UNAUTHORIZED: Code.UNAUTHORIZED, Close.SESSION_EXPIRED: Code.SESSION_EXPIRED}

PushHandler = Callable[["Connection", OutputFrame], None]
CloseHandler = Callable[["Connection", ConnectionLost], None]


class Connection:
    """Use :meth:`open`, which connects and signs in; ``info`` is the sign-in reply."""

    def __init__(
        self, ws: ClientConnection, *, on_push: PushHandler | None = None, on_close: CloseHandler | None = None
    ) -> None:
        self._ws = ws
        self._on_push = on_push
        self._on_close = on_close
        self._ids = itertools.count(1)
        self._pending: dict[RequestId, asyncio.Future[OutputFrame]] = {}
        loop = asyncio.get_running_loop()
        self._unsolicited_sign_in: asyncio.Future[OutputFrame] = loop.create_future()
        self._lost: asyncio.Future[ConnectionLost] = loop.create_future()
        self._closing = False
        self._info: SignInInfo | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._reader = asyncio.create_task(self._read(), name="chat-client-reader")

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        token: str,
        device_id: str,
        header_auth: bool = True,
        origin: str | None = None,
        heartbeat: bool = True,
        open_timeout: float = 10.0,
        on_push: PushHandler | None = None,
        on_close: CloseHandler | None = None,
    ) -> Connection:
        """Connect to ``url`` (``ws://host:port/ws``) and sign in, by headers or by a first frame.

        Raises :class:`ChatError` when sign-in is refused (UNAUTHORIZED, SESSION_EXPIRED, ...) and
        :class:`ConnectionLost` when the edge cannot be reached or closes first.
        """
        headers = {"Authorization": f"Bearer {token}", "X-Device-Id": device_id} if header_auth else None
        try:
            ws = await connect(
                url,
                additional_headers=headers,
                origin=Origin(origin) if origin else None,
                open_timeout=open_timeout,
                close_timeout=2,
                max_size=MAX_INCOMING_BYTES,
            )
        except InvalidStatus as exc:
            # 403 is what an edge that is not ready (starting, stopping) or refuses the Origin
            # answers (it closes before accepting): transient or not, the client cannot tell
            status = exc.response.status_code
            if status == 401:
                raise ChatError(Code.UNAUTHORIZED, "the edge refused the WebSocket upgrade with HTTP 401") from exc
            hint = " (edge not ready, or Origin not allowed)" if status == 403 else ""
            raise ConnectionLost(None, f"the edge refused the WebSocket upgrade with HTTP {status}{hint}") from exc
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise ConnectionLost(None, f"cannot connect to {url}: {exc or type(exc).__name__}") from exc
        conn = cls(ws, on_push=on_push, on_close=on_close)
        try:
            async with asyncio.timeout(open_timeout):
                if header_auth:
                    reply = await conn._wait_unsolicited_sign_in()
                else:
                    reply = await conn.request("sign_in", {"token": token, "device_id": device_id}, timeout_s=None)
            if not reply.ok:
                raise reply.error()
            conn._info = SignInInfo.from_data(reply.data)
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, ConnectionLost) and exc.close_code in _SIGN_IN_CLOSES:
                raise ChatError(_SIGN_IN_CLOSES[exc.close_code], exc.reason or "sign-in refused") from exc
            if isinstance(exc, TimeoutError):
                raise ConnectionLost(None, f"no sign-in reply within {open_timeout} s") from exc
            if isinstance(exc, ValueError):
                raise ConnectionLost(None, f"malformed sign-in reply: {exc}") from exc
            raise
        if heartbeat:
            conn._heartbeat = asyncio.create_task(conn._heartbeats(conn.info.heartbeat_s), name="chat-client-heartbeat")
        return conn

    @property
    def info(self) -> SignInInfo:
        if self._info is None:
            raise RuntimeError("the connection is not signed in")
        return self._info

    @property
    def is_open(self) -> bool:
        return not self._lost.done() and not self._closing

    async def wait_closed(self) -> ConnectionLost:
        """Wait until the socket ends; return how it ended."""
        return await asyncio.shield(self._lost)

    async def request(
        self, frame_type: str, data: dict[str, Any] | None = None, *, timeout_s: float | None
    ) -> OutputFrame:
        """Send one frame and wait for the reply echoing its request_id (whatever its code)."""
        request_id = next(self._ids)
        reply: asyncio.Future[OutputFrame] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = reply
        try:
            await self._send(encode_input(frame_type, data, request_id))
            async with asyncio.timeout(timeout_s):
                return await reply
        finally:
            self._pending.pop(request_id, None)

    async def notify(self, frame_type: str, data: dict[str, Any] | None = None) -> None:
        """Send a frame answered only on error (``ack``, ``typing``); an error reply becomes a push."""
        await self._send(encode_input(frame_type, data, next(self._ids)))

    async def close(self, code: int = Close.NORMAL, reason: str = "") -> None:
        """Close the socket (idempotent) and wait for the reader to finish."""
        self._closing = True
        if self._heartbeat is not None and self._heartbeat is not asyncio.current_task():
            self._heartbeat.cancel()
        with contextlib.suppress(WebSocketException, OSError):
            await self._ws.close(code, reason)
        if self._reader is not asyncio.current_task():
            await asyncio.wait({self._reader})

    async def _wait_unsolicited_sign_in(self) -> OutputFrame:
        """With header auth the edge sends the sign-in result unasked (request_id null)."""
        waiters: set[asyncio.Future[Any]] = {self._unsolicited_sign_in, self._lost}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if self._unsolicited_sign_in.done() and not self._unsolicited_sign_in.cancelled():
            return self._unsolicited_sign_in.result()
        raise await self.wait_closed()

    async def _send(self, text: str) -> None:
        if self._lost.done():
            raise self._lost.result()
        if self._info is not None and len(text.encode()) > self._info.max_frame_bytes:
            raise ChatError(Code.FRAME_TOO_LARGE, f"frame larger than the edge's {self._info.max_frame_bytes} bytes")
        try:
            await self._ws.send(text)
        except ConnectionClosed as exc:
            raise ConnectionLost(_close_code(exc), _close_reason(exc)) from exc

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                try:
                    frame = decode_output(raw)
                except ValueError as exc:
                    logger.warning("ignoring a malformed frame from the edge: %s", exc)
                    continue
                self._dispatch(frame)
        except ConnectionClosed:
            pass
        except Exception:
            logger.exception("chat client reader failed")
            with contextlib.suppress(Exception):
                await self._ws.close(Close.INTERNAL, "client reader failed")
        finally:
            self._finish()

    def _dispatch(self, frame: OutputFrame) -> None:
        if frame.request_id is not None:
            waiter = self._pending.get(frame.request_id)
            if waiter is not None:
                if not waiter.done():
                    waiter.set_result(frame)
                return
        elif frame.type in ("sign_in", "error") and not self._unsolicited_sign_in.done():
            self._unsolicited_sign_in.set_result(frame)
            return
        if self._on_push is not None:
            try:
                self._on_push(self, frame)
            except Exception:
                logger.exception("chat client push handler failed on a %r frame", frame.type)

    def _finish(self) -> None:
        code = self._ws.close_code
        lost = ConnectionLost(code, self._ws.close_reason or "")
        if not self._lost.done():
            self._lost.set_result(lost)
        for waiter in self._pending.values():
            if not waiter.done():
                waiter.set_exception(lost)
        self._unsolicited_sign_in.cancel()
        if self._heartbeat is not None and self._heartbeat is not asyncio.current_task():
            self._heartbeat.cancel()
        if self._on_close is not None:
            try:
                self._on_close(self, lost)
            except Exception:
                logger.exception("chat client close handler failed")

    async def _heartbeats(self, interval_s: float) -> None:
        """A heartbeat every ``interval_s`` (the edge closes a socket silent for twice that)."""
        while not self._lost.done():
            await asyncio.sleep(interval_s)
            try:
                reply = await self.request("heartbeat", timeout_s=interval_s)
            except TimeoutError:
                logger.warning("no heartbeat reply within %.1f s; closing the connection", interval_s)
                await self.close(Close.GOING_AWAY, "heartbeat timeout")
                return
            except ConnectionLost:
                return
            if not reply.ok:
                logger.warning("heartbeat refused: %s", reply.error())


def _close_code(exc: ConnectionClosed) -> int | None:
    return exc.rcvd.code if exc.rcvd is not None else None


def _close_reason(exc: ConnectionClosed) -> str:
    return exc.rcvd.reason if exc.rcvd is not None else ""
