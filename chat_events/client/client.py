"""``ChatClient``: one device of one user on the edge's WebSocket protocol (docs/protocol.md).

What it adds over a bare :class:`~chat_events.client.connection.Connection`:

* **In-order, exactly-once delivery to the application.** Pushes and ``sync`` pages both go
  through one :class:`~chat_events.client.inbox.Inbox`, so each ``user_seq`` reaches
  :meth:`ChatClient.receive` once, ascending. On connect and reconnect the client syncs from its
  last seq until ``has_more`` is false; a push that skips seqs triggers a sync that fills the hole
  first. A hole the server cannot fill is raised once as :class:`GapNotRecoverable`.
* **Idempotent sends.** One ``client_msg_id`` per :meth:`ChatClient.send`, reused by every retry
  (after UNAVAILABLE, a timeout, or a lost connection), so a retry never makes a second message.
* **Housekeeping:** heartbeats, coalesced acks (and a last one on close), reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from types import TracebackType
from typing import Any, TypeVar

from chat_events.api.protocol import SYNC_PAGE_DEFAULT, Close, Code
from chat_events.client.acks import AckCoalescer
from chat_events.client.changes import MessageChanges
from chat_events.client.connection import Connection
from chat_events.client.content import TypedContent, outgoing
from chat_events.client.conversations import ConversationFeed
from chat_events.client.delivery import DeliveryQueue
from chat_events.client.errors import ChatClientError, ChatError, ConnectionLost, GapNotRecoverable
from chat_events.client.frames import OutputFrame
from chat_events.client.mailbox import Mailbox
from chat_events.client.models import (
    Delivery,
    RoomMessage,
    RoomPage,
    SendResult,
    SignInInfo,
    SyncPage,
    TargetType,
    TypingEvent,
    TypingState,
)
from chat_events.client.presence import Presence, PresenceFeed
from chat_events.client.retry import send_retry_delay
from chat_events.client.rooms import RoomFeed
from chat_events.client.status import ConnectionEvent
from chat_events.client.urls import ws_url

logger = logging.getLogger("chat_events.client")

T = TypeVar("T")

FINAL_CLOSE_CODES = frozenset(
    {Close.UNAUTHORIZED, Close.SESSION_EXPIRED, Close.ORIGIN_NOT_ALLOWED, Close.CONFLICT_LOGIN}
)
"""Closes after which reconnecting with the same token/device would not help (or would kick the other device)."""

_RECONNECT_MAX_DELAY_S = 5.0


class ChatClient(MessageChanges):
    """A WebSocket chat client. ``url`` is the edge's ``http://host:port`` or ``ws://host:port/ws``.

    ``last_seq`` is the highest per-user seq this device already has (persist :attr:`last_seq`
    across runs to resume where it stopped); ``None`` resumes from the device's progress as the
    server stored it (the highest seq this device acked, ``SignInInfo.acked_seq``). Nothing
    connects before :meth:`connect` (or ``async with``).
    ``on_connection`` is told when the connection is lost, each failed reconnect attempt, a
    reconnect and the end of the session (:mod:`chat_events.client.status`).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str,
        device_id: str,
        last_seq: int | None = 0,
        origin: str | None = None,
        header_auth: bool = True,
        heartbeat: bool = True,
        ack_interval_s: float = 0.2,
        ack_every: int = 50,
        auto_reconnect: bool = False,
        sync_page_size: int = SYNC_PAGE_DEFAULT,
        request_timeout: float = 10.0,
        open_timeout: float = 10.0,
        on_typing: Callable[[TypingEvent], None] | None = None,
        on_room_message: Callable[[RoomMessage], None] | None = None,
        on_connection: Callable[[ConnectionEvent], None] | None = None,
    ) -> None:
        self.url = ws_url(url)
        self.token = token
        """Used by every (re)connect; replace it after SESSION_EXPIRED, then call :meth:`reconnect`."""
        self.device_id = device_id
        self._origin = origin
        self._header_auth = header_auth
        self._heartbeat = heartbeat
        self._auto_reconnect = auto_reconnect
        self._request_timeout = request_timeout
        self._open_timeout = open_timeout
        self._on_typing = on_typing
        self._on_connection = on_connection

        self._resume_stored = last_seq is None
        last_seq = last_seq or 0
        self._deliveries = DeliveryQueue(last_seq, page_size=sync_page_size)
        self._typing: Mailbox[TypingEvent] = Mailbox(maxlen=1000)
        self._room = RoomFeed(on_room_message)
        self.conversations = ConversationFeed()
        """``conversation`` and ``receipt`` pushes (see :mod:`chat_events.client.conversations`)."""
        self.presence = PresenceFeed()
        """Watched users' presence and its pushes (:meth:`subscribe_presence`, :mod:`chat_events.client.presence`)."""
        self._acks = AckCoalescer(self._send_ack, interval_s=ack_interval_s, every=ack_every, acked_seq=last_seq)

        self._conn: Connection | None = None
        self._info: SignInInfo | None = None
        self._lock = asyncio.Lock()
        self._reconnect_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._final: ChatClientError | None = None
        self._kicked: ChatError | None = None
        self._closed = False

    # --- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> ChatClient:
        try:
            await self.connect()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Connect, sign in and sync from :attr:`last_seq` until ``has_more`` is false. No-op if connected."""
        self._check_usable()
        async with self._lock:
            if self._conn is not None and self._conn.is_open:
                return
            conn = await self._open()
        await self._deliveries.finished(self._catch_up(conn))

    async def reconnect(self) -> None:
        """Replace the connection with a new one (to any edge) and sync what was missed.

        For a close 1001 (edge shutting down), 1013 (socket too slow), a lost network, or after
        ``kicked``/SESSION_EXPIRED once the application decided to take over or set a new token.
        """
        self._check_usable()
        self._final = None
        async with self._lock:
            conn = await self._replace(self._conn)
        await self._deliveries.finished(self._catch_up(conn))

    async def close(self) -> None:
        """Send the last ack, close the socket, and end :meth:`receive`/:meth:`messages` (idempotent)."""
        if self._closed:
            return
        self._closed = True
        tasks = [t for t in (self._reconnect_task, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await self._deliveries.stop()
        await self._acks.stop(flush=True)
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
        closed = ConnectionLost(Close.NORMAL, "client closed")
        self._deliveries.fail(closed)
        self._typing.fail(closed)
        self._room.queue.fail(closed)

    # --- state -----------------------------------------------------------------------------

    @property
    def last_seq(self) -> int:
        """The highest per-user seq delivered to the application in order (what to resume from)."""
        return self._deliveries.last_seq

    @property
    def sign_in_info(self) -> SignInInfo:
        if self._info is None:
            raise RuntimeError("not signed in yet: call connect()")
        return self._info

    @property
    def user_id(self) -> str:
        return self.sign_in_info.user_id

    @property
    def session_id(self) -> str:
        return self.sign_in_info.session_id

    @property
    def edge_id(self) -> str:
        return self.sign_in_info.edge_id

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._conn.is_open

    @property
    def acked_seq(self) -> int:
        return self._acks.acked_seq

    # --- receiving -------------------------------------------------------------------------

    async def receive(self, timeout: float | None = None) -> Delivery:  # noqa: ASYNC109 - the public API
        """The next delivery, strictly in ``user_seq`` order, each seq once.

        Raises :class:`GapNotRecoverable` once where seqs are gone for good (the next call goes
        on after ``resume_seq``), ``TimeoutError`` after ``timeout`` seconds, and
        :class:`ConnectionLost` once the queue is drained and the connection is gone for good
        (closed, kicked, or lost without ``auto_reconnect``; :meth:`reconnect` resumes).
        """
        try:
            delivery = await self._deliveries.receive(timeout)
        except GapNotRecoverable as gap:
            self._acks.rewind(gap.resume_seq)
            self._acks.note(gap.resume_seq)
            raise
        self._acks.note(delivery.user_seq)
        return delivery

    async def messages(self) -> AsyncIterator[Delivery]:
        """Iterate over :meth:`receive` until :meth:`close`.

        A :class:`GapNotRecoverable` ends this iterator with the exception; call ``messages()``
        again to go on.
        """
        while True:
            try:
                yield await self.receive()
            except ConnectionLost:
                if self._closed:
                    return
                raise

    async def typing_events(self) -> AsyncIterator[TypingEvent]:
        """``typing`` pushes (best effort: the oldest are dropped past 1000 unread), until :meth:`close`."""
        async for event in self._drain(self._typing):
            yield event

    async def room_messages(self) -> AsyncIterator[RoomMessage]:
        """``room_message`` pushes of the subscribed room, each conversation seq once, until :meth:`close`."""
        async for message in self._drain(self._room.queue):
            yield message

    async def _drain(self, mailbox: Mailbox[T]) -> AsyncIterator[T]:
        while True:
            try:
                yield await mailbox.get()
            except ConnectionLost:
                if self._closed:
                    return
                raise

    # --- requests --------------------------------------------------------------------------

    async def send(
        self,
        target_type: TargetType,
        target_id: str,
        content: str | dict[str, Any] | TypedContent,
        *,
        message_type: str | None = None,
        client_msg_id: str | None = None,
        mentions: Sequence[str] = (),
        reply_to: str | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109 - per attempt, not overall
        retries: int = 3,
        wait_on_rate_limit: bool = False,
    ) -> SendResult:
        """Send one message; safe to retry: every attempt carries the same ``client_msg_id``.

        Retries (up to ``retries`` times) on UNAVAILABLE, on a reply timeout and on a lost
        connection (reconnecting). RATE_LIMITED raises (see ``retry_after_ms``) unless
        ``wait_on_rate_limit``, which waits ``retry_after_ms`` and counts as a retry. Any other
        refusal raises :class:`ChatError` with the server's code.

        ``content`` is text, or typed content (:mod:`chat_events.client.content`: ``Image(...)``,
        ``Location(...)``, ...), whose type is the ``message_type``; a plain object or string
        goes as ``message_type`` (default ``text``).
        """
        nonce = client_msg_id or str(uuid.uuid4())
        kind, body = outgoing(content, message_type)
        data: dict[str, Any] = {
            "target_type": target_type,
            "target_id": target_id,
            "message_type": kind,
            "content": body,
            "client_msg_id": nonce,
        }
        if mentions:
            data["mentions"] = list(mentions)
        if reply_to is not None:
            data["reply_to"] = reply_to
        retries_done = 0
        while True:
            try:
                conn = await self._connection()
                reply = await conn.request("send", data, timeout_s=timeout)
                if reply.ok:
                    return SendResult.from_data(reply.data)
                raise reply.error()
            except (ChatError, ConnectionLost, TimeoutError) as exc:
                delay = send_retry_delay(exc, retries_done, retries=retries, wait_on_rate_limit=wait_on_rate_limit)
                if delay is None or self._ended(exc):
                    raise
                retries_done += 1
                logger.info("send %s: %s; retry %d/%d in %.2f s", nonce, exc, retries_done, retries, delay)
                await asyncio.sleep(delay)

    async def sync(self, seq: int | None, limit: int = SYNC_PAGE_DEFAULT) -> SyncPage:
        """One raw ``sync`` page after ``seq`` (does not feed :meth:`receive`); ``None`` asks for
        what follows this device's stored progress (``SyncPage.after_seq`` says where that was).

        Raises :class:`GapNotRecoverable` when the server answers NOT_RECOVERABLE.
        """
        return await self._sync_on(await self._connection(), seq, limit)

    async def read(self, conversation_id: str, seq: int) -> int:
        """Mark ``conversation_id`` read up to conversation ``seq``; returns the read seq the edge
        accepted (clamped to the last message). Every device then gets a ``conversation`` push."""
        reply = await self._call("read", {"conversation_id": conversation_id, "seq": seq})
        return int(reply["read_seq"])

    async def set_conversation(
        self,
        *conversation_ids: str,
        pinned: bool | None = None,
        muted: bool | None = None,
        hidden: bool | None = None,
    ) -> None:
        """Pin, mute or remove (``hidden=True``) conversations of this user."""
        data = {"conversation_ids": list(conversation_ids), "pinned": pinned, "muted": muted, "hidden": hidden}
        await self._call("conversation_set", data)

    async def read_all(self) -> None:
        """Mark every conversation read."""
        await self._call("read_all", {})

    async def set_settings(self, *, read_receipts: bool | None = None, show_last_seen: bool | None = None) -> None:
        """This user's settings (None: as it is): whether the other members get read receipts,
        and whether others see when this user was last online."""
        data = {"read_receipts": read_receipts, "show_last_seen": show_last_seen}
        await self._call("settings", {k: v for k, v in data.items() if v is not None})

    async def subscribe_presence(self, user_ids: Sequence[str]) -> dict[str, Presence]:
        """Watch these users (1-500 per call, 500 per connection): answers their presence now
        (``unknown`` for anyone this user does not talk to); ``presence`` pushes then follow in
        :attr:`presence` (``presence.next()``, ``presence.current``). Subscribed again after a reconnect."""
        reply = await self._call("presence_subscribe", {"user_ids": list(user_ids)})
        return self.presence.subscribed(user_ids, reply["presence"])

    async def unsubscribe_presence(self, user_ids: Sequence[str] | None = None) -> None:
        """Stop watching these users (None: everyone)."""
        self.presence.unsubscribed(user_ids)
        await self._call("presence_unsubscribe", {} if user_ids is None else {"user_ids": list(user_ids)})

    async def block(self, user_id: str) -> dict[str, Any]:
        """Block ``user_id``: answered once the block is stored (``{"user_id", "blocked": true,
        "since_ms"}``, with ``"status": "pending"`` if the workers were slow). From then on no
        message, typing or room push of theirs reaches this user, and their direct sends are
        refused with code 18 (docs/protocol.md#blocks)."""
        return await self._call("block", {"user_id": user_id})

    async def unblock(self, user_id: str) -> dict[str, Any]:
        """Lift the block on ``user_id``: their new messages arrive again (those sent meanwhile were
        never delivered; history shows them again, docs/protocol.md#blocks)."""
        return await self._call("unblock", {"user_id": user_id})

    async def _call(self, frame_type: str, data: dict[str, Any]) -> dict[str, Any]:
        reply = await (await self._connection()).request(frame_type, data, timeout_s=self._request_timeout)
        if not reply.ok:
            raise reply.error()
        return dict(reply.data)

    async def typing(self, target_type: TargetType, target_id: str, state: TypingState = "start") -> None:
        """Tell the conversation this user started or stopped typing (answered only on error, which is logged)."""
        conn = await self._connection()
        await conn.notify("typing", {"target_type": target_type, "target_id": target_id, "state": state})

    async def subscribe_room(self, room_id: str | None, seq: int = 0, limit: int = SYNC_PAGE_DEFAULT) -> RoomPage:
        """Subscribe to a read-fan-out room (None unsubscribes); returns the messages after conversation ``seq``.

        Live ``room_message`` pushes follow (see :meth:`room_messages`); after a reconnect the
        client subscribes again from the highest seq it has seen.
        """
        conn = await self._connection()
        self._room.subscribing(room_id, seq)
        try:
            page = await self._subscribe_on(conn, room_id, seq, limit)
        except BaseException:
            self._room.subscribing(None, 0)
            raise
        self._room.subscribed(page)
        return page

    async def _subscribe_on(self, conn: Connection, room_id: str | None, seq: int, limit: int) -> RoomPage:
        reply = await conn.request(
            "subscribe_room", {"room_id": room_id, "seq": seq, "limit": limit}, timeout_s=self._request_timeout
        )
        if not reply.ok:
            raise reply.error()
        return RoomPage.from_data(reply.data, seq)

    async def _sync_on(self, conn: Connection, seq: int | None, limit: int) -> SyncPage:
        data = {"limit": limit} if seq is None else {"seq": seq, "limit": limit}
        reply = await conn.request("sync", data, timeout_s=self._request_timeout)
        if not reply.ok:
            raise reply.error()
        return SyncPage.from_data(reply.data, seq)

    # --- connections -----------------------------------------------------------------------

    def _ended(self, failure: BaseException) -> bool:
        """A lost connection that no retry can get back: closed, kicked, refused, or never connected."""
        return isinstance(failure, ConnectionLost) and (self._closed or self._final is not None or self._info is None)

    def _check_usable(self) -> None:
        if self._closed:
            raise ConnectionLost(Close.NORMAL, "client closed")

    async def _open(self) -> Connection:
        conn = await Connection.open(
            self.url,
            token=self.token,
            device_id=self.device_id,
            header_auth=self._header_auth,
            origin=self._origin,
            heartbeat=self._heartbeat,
            open_timeout=self._open_timeout,
            on_push=self._on_push,
            on_close=self._on_close,
        )
        again = self._info is not None
        self._conn, self._info = conn, conn.info
        if self._resume_stored and not again:  # before the catch-up: it syncs from here
            self._deliveries.resume_at(conn.info.acked_seq)
            self._acks.resume_at(conn.info.acked_seq)
        self._final = self._kicked = None
        self._deliveries.fail(None)
        self._typing.fail(None)
        self._room.queue.fail(None)
        self._acks.start()
        if self._room.room_id is not None:
            self._spawn(self._resubscribe(conn, self._room.room_id))
        if again and self.presence.watched:
            self._spawn(self._resubscribe_presence(conn))
        if again:
            self._emit(ConnectionEvent("reconnected", conn.info.edge_id))
        return conn

    async def _replace(self, failed: Connection | None) -> Connection:
        """Close ``failed`` (if still open) and open a new connection. Hold ``_lock``."""
        self._conn = None
        if failed is not None:
            await failed.close()
        return await self._open()

    async def _connection(self) -> Connection:
        """The open connection, reconnecting (once, shared by all callers) if it was lost."""
        self._check_usable()
        conn = self._conn
        if conn is not None and conn.is_open:
            return conn
        if self._reconnect_task is not None and not self._reconnect_task.done():
            await asyncio.wait({self._reconnect_task})
        if self._final is not None:
            raise self._final
        if self._info is None:
            raise ConnectionLost(None, "not connected: call connect() first")
        async with self._lock:
            if self._conn is not None and self._conn.is_open:
                return self._conn
            self._check_usable()
            new = await self._replace(self._conn or conn)
        self._catch_up(new)
        return new

    def _on_close(self, conn: Connection, lost: ConnectionLost) -> None:
        if conn is not self._conn or self._closed:
            return  # replaced or closed on purpose
        if self._kicked is not None or lost.close_code in FINAL_CLOSE_CODES:
            reason = self._kicked.message if self._kicked is not None else lost.reason
            self._final = ConnectionLost(lost.close_code, reason or "the edge ended this session")
            self._deliveries.fail(self._final)
            self._emit(ConnectionEvent("ended", str(self._final)))
            return
        self._emit(ConnectionEvent("lost", str(lost)))
        if not self._auto_reconnect:
            self._deliveries.fail(lost)
            return
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.create_task(self._reconnect_forever(conn), name="chat-client-reconnect")

    async def _reconnect_forever(self, failed: Connection) -> None:
        delay = 0.05
        attempts = 0
        while not self._closed:
            try:
                async with self._lock:
                    if self._conn is not None and self._conn is not failed and self._conn.is_open:
                        return
                    conn = await self._replace(failed)
                self._catch_up(conn)
                return
            except ChatError as exc:
                if not exc.retriable and exc.code != Code.TOO_MANY_CONNECTIONS:
                    logger.warning("reconnect refused, giving up: %s", exc)
                    self._final = exc
                    self._deliveries.fail(exc)
                    self._emit(ConnectionEvent("ended", str(exc)))
                    return
                logger.info("reconnect refused: %s; again in %.2f s", exc, delay)
                failure: ChatClientError = exc
            except ConnectionLost as exc:
                logger.info("reconnect failed: %s; again in %.2f s", exc, delay)
                failure = exc
            attempts += 1
            self._emit(ConnectionEvent("reconnecting", str(failure), attempts))
            await asyncio.sleep(delay)
            delay = min(_RECONNECT_MAX_DELAY_S, delay * 2)

    # --- pushes ----------------------------------------------------------------------------

    def _on_push(self, conn: Connection, frame: OutputFrame) -> None:
        if frame.type == "kicked":
            self._kicked = frame.error() if not frame.ok else ChatError(Code.CONFLICT_LOGIN, frame.message)
            logger.warning("kicked: %s", self._kicked)
        elif not frame.ok:
            logger.warning("the edge refused a %r frame: %s", frame.type, frame.error())
        elif frame.type == "message":
            if self._deliveries.push(Delivery.from_data(frame.data)) and conn is self._conn:
                self._catch_up(conn)
        elif frame.type == "typing":
            event = TypingEvent.from_data(frame.data)
            self._typing.put(event)
            if self._on_typing is not None:
                self._on_typing(event)
        elif frame.type == "room_message":
            self._room.accept(RoomMessage.from_data(frame.data))
        elif frame.type in ("conversation", "receipt"):
            self.conversations.accept(frame.type, frame.data)
        elif frame.type == "presence":
            self.presence.accept(frame.data)
        else:
            logger.debug("ignoring a %r push", frame.type)

    async def _resubscribe(self, conn: Connection, room_id: str) -> None:
        try:
            page = await self._subscribe_on(conn, room_id, self._room.seq, SYNC_PAGE_DEFAULT)
        except ChatClientError as exc:
            logger.warning("resubscribing to room %s failed: %s", room_id, exc)
            return
        except TimeoutError:
            logger.warning("resubscribing to room %s timed out", room_id)
            return
        for message in page.messages:
            self._room.accept(RoomMessage(room_id, message))

    async def _resubscribe_presence(self, conn: Connection) -> None:
        watched = sorted(self.presence.watched)
        for start in range(0, len(watched), 500):
            chunk = watched[start : start + 500]
            try:
                reply = await conn.request("presence_subscribe", {"user_ids": chunk}, timeout_s=self._request_timeout)
            except (ChatClientError, TimeoutError) as exc:
                logger.warning("resubscribing to presence failed: %s", exc)
                return
            if reply.ok:
                self.presence.subscribed(chunk, reply.data["presence"])

    # --- in-order delivery -----------------------------------------------------------------

    def _catch_up(self, conn: Connection) -> asyncio.Task[Exception | None]:
        """Sync on ``conn`` from the last released seq until nothing is missing (in the background)."""

        async def sync(seq: int, limit: int) -> SyncPage:
            return await self._sync_on(conn, seq, limit)

        return self._deliveries.catch_up(conn, sync)

    # --- acks ------------------------------------------------------------------------------

    async def _send_ack(self, seq: int) -> bool:
        conn = self._conn
        if conn is None or not conn.is_open:
            return False
        await conn.notify("ack", {"seq": seq})
        return True

    def _emit(self, event: ConnectionEvent) -> None:
        if self._on_connection is None:
            return
        try:
            self._on_connection(event)
        except Exception:
            logger.exception("chat client on_connection callback failed on %s", event)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
