"""A fake edge for unit tests of the client: the ``/ws`` protocol over a real socket, with an
in-memory per-user delivery log and switches for the failures a client must survive."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from chat_events.api.protocol import Close, Code

GOOD_TOKEN = "token-alice"


def message_view(seq: int, *, conversation_id: str = "dm:alice:bob", sender_id: str = "bob") -> dict[str, Any]:
    return {
        "message_id": f"m{seq}",
        "conversation_id": conversation_id,
        "seq": seq,
        "sender_id": sender_id,
        "target_type": "user",
        "target_id": "alice",
        "message_type": "text",
        "content": f"hello {seq}",
        "client_msg_id": f"c{seq}",
        "mentions": [],
        "sent_at_ms": 1_700_000_000_000 + seq,
        "status": "normal",
    }


def frame(frame_type: str, data: Any = None, *, request_id: Any = None, code: int = 0, message: str = "ok") -> str:
    out = {"type": frame_type, "request_id": request_id, "code": code, "message": message, "data": data or {}}
    return orjson.dumps(out).decode()


class FakeEdge:
    def __init__(self, *, heartbeat_s: float = 30.0) -> None:
        self.heartbeat_s = heartbeat_s
        self.log: dict[int, dict[str, Any]] = {}
        """user_seq -> message view: what ``sync`` can return."""
        self.gone: set[int] = set()
        """Seqs the server cannot recover (``sync`` answers NOT_RECOVERABLE)."""
        self.frames: list[dict[str, Any]] = []
        """Every input frame received, in order."""
        self.headers: list[dict[str, str]] = []
        self.sockets: list[ServerConnection] = []
        self.messages_by_nonce: dict[str, str] = {}
        self.drop_after_storing = 0
        """Store the next N sends, then cut the connection instead of replying."""
        self.unavailable = 0
        """Answer the next N sends with UNAVAILABLE."""
        self.rate_limited = 0
        """Answer the next N sends with RATE_LIMITED."""
        self.refuse_sockets = 0
        """Close the next N sockets (1013) before signing them in."""
        self.on_sync: Any = None
        """Awaited with (socket, seq) before a sync is answered (to inject pushes mid-sync); True = it answered."""
        self._server: Server | None = None
        self._arrived = asyncio.Event()

    async def __aenter__(self) -> FakeEdge:
        self._server = await serve(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    @property
    def last_seq(self) -> int:
        return max([*self.log, *self.gone], default=0)

    def store(self, count: int) -> list[int]:
        seqs = list(range(self.last_seq + 1, self.last_seq + 1 + count))
        for seq in seqs:
            self.log[seq] = message_view(seq)
        return seqs

    def of_type(self, frame_type: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("type") == frame_type]

    async def push(self, *seqs: int, socket: ServerConnection | None = None) -> None:
        ws = socket or self.sockets[-1]
        for seq in seqs:
            await ws.send(frame("message", {"user_seq": seq, "message": self.log[seq]}))

    async def push_raw(self, text: str) -> None:
        await self.sockets[-1].send(text)

    async def wait_for(self, frame_type: str, count: int = 1, timeout_s: float = 1.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(timeout_s):
            while len(self.of_type(frame_type)) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.of_type(frame_type)

    def _record(self, request: dict[str, Any]) -> None:
        self.frames.append(request)
        self._arrived.set()

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
        self.sockets.append(ws)
        with contextlib.suppress(ConnectionClosed):
            if self.refuse_sockets:
                self.refuse_sockets -= 1
                await ws.close(Close.TRY_AGAIN_LATER, "not now")
                return
            auth = ws.request.headers.get("Authorization")
            token: Any
            device: Any
            request_id: Any
            if auth is not None:
                token, device, request_id = auth.removeprefix("Bearer "), ws.request.headers.get("X-Device-Id"), None
            else:
                first = orjson.loads(await ws.recv())
                self._record(first)
                data = first.get("data") or {}
                token, device, request_id = data.get("token"), data.get("device_id"), first.get("request_id")
            if token != GOOD_TOKEN:
                await ws.send(frame("sign_in", request_id=request_id, code=Code.UNAUTHORIZED, message="bad token"))
                await ws.close(Close.UNAUTHORIZED, "bad token")
                return
            info = {
                "user_id": "alice",
                "session_id": f"s{len(self.sockets)}",
                "edge_id": "edge-1",
                "device_id": device,
                "heartbeat_s": self.heartbeat_s,
                "max_frame_bytes": 65536,
                "last_user_seq": self.last_seq,
            }
            await ws.send(frame("sign_in", info, request_id=request_id))
            async for raw in ws:
                request = orjson.loads(raw)
                self._record(request)
                await self._answer(ws, request)

    async def _answer(self, ws: ServerConnection, request: dict[str, Any]) -> None:
        kind, rid, data = request["type"], request.get("request_id"), request.get("data") or {}
        if kind == "send":
            if self.unavailable:
                self.unavailable -= 1
                await ws.send(frame("send", request_id=rid, code=Code.UNAVAILABLE, message="try again"))
                return
            if self.rate_limited:
                self.rate_limited -= 1
                await ws.send(
                    frame("send", {"retry_after_ms": 20}, request_id=rid, code=Code.RATE_LIMITED, message="slow down")
                )
                return
            if data["target_id"] == "stranger":
                await ws.send(frame("send", request_id=rid, code=Code.FORBIDDEN, message="not a member"))
                return
            nonce = data["client_msg_id"]
            duplicate = nonce in self.messages_by_nonce
            message_id = self.messages_by_nonce.setdefault(nonce, f"msg-{len(self.messages_by_nonce) + 1}")
            if self.drop_after_storing:
                self.drop_after_storing -= 1
                assert ws.transport is not None
                ws.transport.abort()  # the reply is lost with the connection
                return
            reply = {"message_id": message_id, "conversation_id": "dm:alice:bob", "seq": 1, "duplicate": duplicate}
            await ws.send(frame("send", reply, request_id=rid))
        elif kind == "sync":
            seq, limit = data.get("seq", 0), data.get("limit", 100)
            if self.on_sync is not None and await self.on_sync(ws, seq):
                return  # the hook answered
            if seq + 1 in self.gone:
                to_seq = seq + 1
                while to_seq + 1 in self.gone:
                    to_seq += 1
                gap = {"from_seq": seq + 1, "to_seq": to_seq, "resume_seq": to_seq}
                await ws.send(frame("sync", gap, request_id=rid, code=Code.NOT_RECOVERABLE, message="gone"))
                return
            page: list[dict[str, Any]] = []
            next_seq = seq + 1
            while next_seq in self.log and len(page) < limit:
                page.append({"user_seq": next_seq, "message": self.log[next_seq]})
                next_seq += 1
            has_more = next_seq <= self.last_seq
            last = page[-1]["user_seq"] if page else seq
            await ws.send(frame("sync", {"messages": page, "has_more": has_more, "last_seq": last}, request_id=rid))
        elif kind == "heartbeat":
            await ws.send(frame("heartbeat", {"server_time_ms": int(time.time() * 1000)}, request_id=rid))
        elif kind == "subscribe_room":
            reply = {"room_id": data.get("room_id"), "messages": [], "has_more": False, "last_seq": data.get("seq", 0)}
            await ws.send(frame("subscribe_room", reply, request_id=rid))
        elif kind == "typing" and data.get("target_id") == "stranger":
            await ws.send(frame("typing", request_id=rid, code=Code.FORBIDDEN, message="not a member"))
