"""What each input frame does, for one signed-in socket. Thin: parse -> decide (pure) -> act.

``send`` is the only frame that writes to Kafka on the hot path. It is enqueued in frame order
and acknowledged to the client only after the broker acknowledged it (see ws_session).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import Any

from chat_events.api.authz import HIDDEN_GROUP, conversation_of, group_outsider, message_id_for, send_refusal
from chat_events.api.block_actions import block_frame
from chat_events.api.block_frames import Block, Unblock
from chat_events.api.block_rules import BLOCKED_MESSAGE, direct_send_blocked
from chat_events.api.connection import Connection
from chat_events.api.conversation_frames import conversation_frame
from chat_events.api.edge import EdgeNode
from chat_events.api.group_actions import group_send_refusal
from chat_events.api.message_change_frames import DeleteMessage, EditMessage, ReactToMessage, RecallMessage
from chat_events.api.message_changes import change_frame
from chat_events.api.presence_actions import presence_frame
from chat_events.api.presence_frames import PresenceSubscribe, PresenceUnsubscribe
from chat_events.api.protocol import (
    Ack,
    Code,
    ConversationSet,
    Frame,
    Heartbeat,
    ProtocolError,
    Read,
    ReadAll,
    Send,
    SetSettings,
    SignIn,
    SubscribeRoom,
    Sync,
    Typing,
    output_frame,
)
from chat_events.api.sync import room_page, sync_page
from chat_events.errors import ChatEventsError
from chat_events.events.factory import new_envelope
from chat_events.events.types import DeviceAcked, PersonalChatSent, UserChatRateLimited
from chat_events.store.progress import sync_start

log = logging.getLogger(__name__)

RECENT_SENDS = 256
"""Client message ids remembered per socket, to answer a retried send without a store read."""
ACK_COALESCE_S = 0.2


class FrameHandlers:
    """Per socket; what it remembers is allocated on first use (most sockets are idle)."""

    __slots__ = ("_ack_task", "_acked_published", "_pending", "_recent", "conn", "edge", "settings")

    def __init__(self, edge: EdgeNode, conn: Connection) -> None:
        self.edge = edge
        self.conn = conn
        self.settings = edge.settings
        self._pending: set[asyncio.Task[None]] | None = None
        self._recent: OrderedDict[str, str] | None = None
        self._ack_task: asyncio.Task[None] | None = None
        self._acked_published = 0

    async def handle(self, frame: Frame) -> str | None:
        request = frame.request
        rid = frame.request_id
        if isinstance(request, Send):
            await self._send(request, rid)
            return None
        if isinstance(request, Ack):
            self._ack(request)
            return None
        if isinstance(request, Sync):
            start = sync_start(request.seq, self.conn.acked_seq, self.conn.stored_acked_seq)
            data = await sync_page(
                self.edge.store, self.conn.user_id, start, request.limit, frame_type="sync", request_id=rid
            )
            return output_frame("sync", request_id=rid, data={**data, "after_seq": start})
        if isinstance(request, Heartbeat):
            return output_frame("heartbeat", request_id=rid, data={"server_time_ms": int(time.time() * 1000)})
        if isinstance(request, Typing):
            await self._typing(request, rid)
            return None
        if isinstance(request, SubscribeRoom):
            return await self._subscribe(request, rid)
        if isinstance(request, Read | ConversationSet | ReadAll | SetSettings):
            return await conversation_frame(self.edge, self.conn, frame)
        if isinstance(request, EditMessage | RecallMessage | DeleteMessage | ReactToMessage):
            self._spawn(await change_frame(self.edge, self.conn, frame))  # checked and enqueued in frame order
            return None
        if isinstance(request, PresenceSubscribe | PresenceUnsubscribe):
            return await presence_frame(self.edge, self.conn, frame)
        if isinstance(request, Block | Unblock):  # answered by the task once the store shows it
            self._spawn(block_frame(self.edge, self.conn, frame))
            return None
        if isinstance(request, SignIn):
            raise ProtocolError(
                Code.ALREADY_SIGNED_IN, "this socket is already signed in", frame_type="sign_in", request_id=rid
            )
        raise ProtocolError(Code.UNKNOWN_TYPE, f"unhandled frame type {frame.type}", request_id=rid)

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Let in-flight sends finish (their replies may no longer reach the client, but the
        broker's answer decides nothing is half-done); flush the device ack."""
        if self._pending:
            await asyncio.wait(self._pending, timeout=timeout_s)
        if self._ack_task is not None and not self._ack_task.done():
            self._ack_task.cancel()
        await self._publish_ack()

    # --- send ---------------------------------------------------------------------------

    async def _send(self, send: Send, rid: Any) -> None:
        conn, edge = self.conn, self.edge
        wait_ms, first = edge.send_limits.take(conn.user_id, time.monotonic())
        if wait_ms:
            if first:
                self._spawn(self._publish_rate_limited(wait_ms))
            raise ProtocolError(
                Code.RATE_LIMITED,
                f"too many messages; retry in {wait_ms} ms",
                data={"retry_after_ms": wait_ms},
                frame_type="send",
                request_id=rid,
            )
        if not edge.admission.open:  # back-pressure: the workers are behind (backpressure.py)
            retry_ms = edge.admission.retry_after_ms
            raise ProtocolError(
                Code.UNAVAILABLE,
                f"busy: messages are queued faster than they are delivered; retry in {retry_ms} ms "
                "with the same client_msg_id",
                data={"retry_after_ms": retry_ms},
                frame_type="send",
                request_id=rid,
            )
        in_group = send.target_type == "group"
        members = await edge.memberships.members(send.target_id, including=conn.user_id) if in_group else None
        refusal = send_refusal(conn.user_id, send.target_type, send.target_id, members)
        if refusal is not None:  # a missing group and one you are not in alike: FORBIDDEN
            raise ProtocolError(Code.FORBIDDEN, refusal, frame_type="send", request_id=rid)
        muted = await group_send_refusal(edge, send.target_id, conn.user_id) if in_group else None
        if muted is not None:  # a dissolved group (8), or muted in it (19): group_cache.py
            raise ProtocolError(muted[0], muted[1], frame_type="send", request_id=rid)
        if send.target_type == "user":  # the recipient blocks the sender: told, not dropped (block_rules.py)
            blockers = (await edge.store.blockers_of([conn.user_id])).get(conn.user_id, ())
            if direct_send_blocked(send.target_type, send.target_id, blockers):
                raise ProtocolError(Code.BLOCKED, BLOCKED_MESSAGE, frame_type="send", request_id=rid)
        message_id = message_id_for(conn.user_id, send.client_msg_id)
        conversation_id = conversation_of(conn.user_id, send.target_type, send.target_id)
        if self._recent is not None and send.client_msg_id in self._recent:
            self._spawn(self._answer_duplicate(message_id, conversation_id, send, rid))
            return
        if send.reply_to is not None:  # answers a stored message of this conversation, or is refused
            answered = await edge.store.get_message(send.reply_to)
            if answered is None or answered.conversation_id != conversation_id:
                raise ProtocolError(
                    Code.INVALID_FIELD,
                    "reply_to: no such message in this conversation",
                    data={"field": "reply_to"},
                    frame_type="send",
                    request_id=rid,
                )
        event = PersonalChatSent(
            message_id=message_id,
            sender_id=conn.user_id,
            target_id=send.target_id,
            payload=send.content,
            target_type=send.target_type,
            conversation_id=conversation_id,
            message_type=send.message_type,
            client_msg_id=send.client_msg_id,
            mentions=send.mentions,
            reply_to=send.reply_to,
        )
        envelope = new_envelope(event, user_id=conn.user_id, session_id=conn.session_id, client_id=conn.device_id)
        try:
            acknowledged = await edge.publisher.enqueue(envelope)
        except ChatEventsError as exc:
            log.warning("send of %s not enqueued to Kafka: %s", conn.user_id, exc.code)
            raise self._unavailable(rid) from None
        self._spawn(self._answer_send(acknowledged, message_id, conversation_id, send.client_msg_id, rid))

    async def _answer_send(
        self, acknowledged: Any, message_id: str, conversation_id: str, client_msg_id: str, rid: Any
    ) -> None:
        try:
            await acknowledged
        except ChatEventsError as exc:
            log.warning("send of %s not acknowledged by Kafka: %s", self.conn.user_id, exc.code)
            err = self._unavailable(rid)
            self.conn.push(output_frame("send", request_id=rid, code=err.code, message=err.message))
            return
        self._remember(client_msg_id, message_id)
        data = {"message_id": message_id, "conversation_id": conversation_id, "seq": None, "duplicate": False}
        self.conn.push(output_frame("send", request_id=rid, data=data))

    async def _answer_duplicate(self, message_id: str, conversation_id: str, send: Send, rid: Any) -> None:
        """A send this socket already had acknowledged: same id, and the seq if it is stored."""
        seq = None
        with contextlib.suppress(ChatEventsError):
            stored = await self.edge.store.find_client_messages([(self.conn.user_id, send.client_msg_id)])
            found = stored.get((self.conn.user_id, send.client_msg_id))
            seq = found.seq if found is not None else None
        data = {"message_id": message_id, "conversation_id": conversation_id, "seq": seq, "duplicate": True}
        self.conn.push(output_frame("send", request_id=rid, data=data))

    def _remember(self, client_msg_id: str, message_id: str) -> None:
        if self._recent is None:
            self._recent = OrderedDict()
        self._recent[client_msg_id] = message_id
        if len(self._recent) > RECENT_SENDS:
            self._recent.popitem(last=False)

    def _unavailable(self, rid: Any) -> ProtocolError:
        return ProtocolError(
            Code.UNAVAILABLE,
            "not accepted: Kafka did not acknowledge in time; retry with the same client_msg_id",
            frame_type="send",
            request_id=rid,
        )

    async def _publish_rate_limited(self, wait_ms: int) -> None:
        limits = self.edge.send_limits
        window_ms = int(limits.burst / limits.rate_per_s * 1000)
        envelope = new_envelope(
            UserChatRateLimited(action="send", limit=limits.burst, window_ms=window_ms, retry_after_ms=wait_ms),
            user_id=self.conn.user_id,
            session_id=self.conn.session_id,
        )
        with contextlib.suppress(ChatEventsError):
            await self.edge.publisher.publish(envelope)

    # --- ack, typing, rooms -------------------------------------------------------------

    def _ack(self, ack: Ack) -> None:
        if ack.seq <= self.conn.acked_seq:
            return
        self.conn.acked_seq = ack.seq
        if self._ack_task is None or self._ack_task.done():
            self._ack_task = asyncio.ensure_future(self._coalesced_ack())

    async def _coalesced_ack(self) -> None:
        await asyncio.sleep(ACK_COALESCE_S)
        await self._publish_ack()

    async def _publish_ack(self) -> None:
        """At most one deviceAcked per coalescing interval per socket."""
        seq = self.conn.acked_seq
        if seq <= self._acked_published:
            return
        self._acked_published = seq
        envelope = new_envelope(
            DeviceAcked(device_id=self.conn.device_id, seq=seq, received_at_ms=int(time.time() * 1000)),
            user_id=self.conn.user_id,
            session_id=self.conn.session_id,
        )
        with contextlib.suppress(ChatEventsError):
            await self.edge.publisher.publish(envelope)

    async def _typing(self, typing: Typing, rid: Any) -> None:
        conn, edge = self.conn, self.edge
        wait_ms, _ = edge.typing_limits.take(conn.user_id, time.monotonic())
        if wait_ms:
            raise ProtocolError(
                Code.RATE_LIMITED,
                "typing too often",
                data={"retry_after_ms": wait_ms},
                frame_type="typing",
                request_id=rid,
            )
        in_group = typing.target_type == "group"
        members = await edge.memberships.members(typing.target_id, including=conn.user_id) if in_group else None
        refusal = send_refusal(conn.user_id, typing.target_type, typing.target_id, members)
        if refusal is not None:
            raise ProtocolError(Code.FORBIDDEN, refusal, frame_type="typing", request_id=rid)
        recipients = {typing.target_id} if typing.target_type == "user" else set(members or ()) - {conn.user_id}
        self._spawn(edge.relay_typing(conn.user_id, typing, recipients))

    async def _subscribe(self, request: SubscribeRoom, rid: Any) -> str:
        conn, edge = self.conn, self.edge
        if request.room_id is None:
            edge.registry.leave_room(conn)
            return output_frame("subscribe_room", request_id=rid, data={"room_id": None})
        members = await edge.memberships.members(request.room_id, including=conn.user_id)
        if members is None or group_outsider(conn.user_id, members):  # one answer, whether the group exists or not
            raise ProtocolError(Code.FORBIDDEN, HIDDEN_GROUP, frame_type="subscribe_room", request_id=rid)
        if len(members) <= self.settings.fanout_write_max_members:
            raise ProtocolError(
                Code.INVALID_FIELD,
                f"{request.room_id} is not a room (groups up to {self.settings.fanout_write_max_members} members "
                "are delivered through the inbox)",
                data={"field": "room_id"},
                frame_type="subscribe_room",
                request_id=rid,
            )
        blocks = await edge.store.blocks_by(conn.user_id)
        data = await room_page(
            edge.store, request.room_id, request.seq, request.limit, blocks=blocks, reader_id=conn.user_id
        )
        edge.registry.join_room(conn, request.room_id, int(data["last_seq"]))
        return output_frame("subscribe_room", request_id=rid, data=data)

    def _spawn(self, coro: Any) -> None:
        if self._pending is None:
            self._pending = set()
        task = asyncio.ensure_future(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
