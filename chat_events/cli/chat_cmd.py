"""``chat-events chat``: a small terminal chat on :mod:`chat_events.client` (development mode).

Gets a dev token over HTTP, signs in, prints what was missed and then live messages of one
conversation (others are summarised), and sends each line typed. ``/quit``, end of input or
Ctrl-C leave.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chat_events.events.conversations import direct_conversation_id
from chat_events.settings import Settings

if TYPE_CHECKING:
    from chat_events.client import ChatClient, Delivery, TypingEvent

QUIT = "/quit"
_ANY_INTERFACE = {"", "0.0.0.0", "::"}


def register(sub: Any) -> None:
    chat = sub.add_parser("chat", help="chat in the terminal as a user (needs an edge in development mode)")
    chat.add_argument("--as", dest="user", required=True, metavar="USER", help="your user id")
    target = chat.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", metavar="USER", help="chat 1:1 with this user")
    target.add_argument("--group", metavar="ID", help="chat in this group")
    chat.add_argument(
        "--url", default=None, help="the edge's HTTP address (default http://CHAT_EDGE_HOST:CHAT_EDGE_PORT)"
    )
    chat.add_argument("--device", default=None, help="device id (default: cli-<random>)")
    chat.add_argument(
        "--history", type=int, default=20, metavar="N", help="missed messages of this conversation to show"
    )
    chat.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    url = args.url or default_url(settings)
    target_type, target_id = ("user", args.to) if args.to else ("group", args.group)
    device = args.device or f"cli-{uuid.uuid4().hex[:8]}"
    try:
        return asyncio.run(_chat(url, args.user, target_type, target_id, device, max(0, args.history)))
    except KeyboardInterrupt:
        print(flush=True)
        return 0


def default_url(settings: Settings) -> str:
    host = str(getattr(settings, "edge_host", "127.0.0.1"))
    port = int(getattr(settings, "edge_port", 8000))
    host = "127.0.0.1" if host in _ANY_INTERFACE else host
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def conversation_of(user: str, target_type: str, target_id: str) -> str:
    return direct_conversation_id(user, target_id) if target_type == "user" else target_id


def format_message(message: dict[str, Any]) -> str:
    """``[HH:MM:SS] sender: text`` (local time of ``sent_at_ms``); other types show ``<type>``."""
    sent = message.get("sent_at_ms")
    when = datetime.fromtimestamp(sent / 1000).strftime("%H:%M:%S") if isinstance(sent, int) else "--:--:--"
    kind = message.get("message_type", "text")
    body = str(message.get("content", ""))
    if kind != "text":
        body = f"<{kind}> {body}"
    return f"[{when}] {message.get('sender_id', '?')}: {body}"


def _say(line: str) -> None:
    print(line, flush=True)


async def _chat(url: str, user: str, target_type: str, target_id: str, device: str, history: int) -> int:
    from chat_events.api.protocol import Code
    from chat_events.client import ChatClient, ChatClientError, ChatError, HttpApi

    try:
        async with HttpApi(url) as http:
            token = (await http.dev_token(user)).token
    except ChatError as exc:
        if exc.code == Code.NOT_FOUND:
            _say(f"error: {url} issues no dev tokens (the edge must run with CHAT_ENVIRONMENT=development)")
        else:
            _say(f"error: cannot get a token for {user} from {url}: {exc}")
        return 1
    conversation = conversation_of(user, target_type, target_id)
    chat = ChatClient(
        url, token=token, device_id=device, auto_reconnect=True, on_typing=_typing_notice(user, conversation)
    )
    try:
        await chat.connect()
    except ChatClientError as exc:
        _say(f"error: cannot sign in at {url}: {exc}")
        await chat.close()
        return 1
    try:
        _say(f"signed in as {user} (device {device}, edge {chat.edge_id}); chatting in {conversation}; {QUIT} leaves")
        printed: set[str] = set()
        await _show_missed(chat, conversation, history, printed)
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        _read_stdin(asyncio.get_running_loop(), lines)
        tasks = {
            asyncio.create_task(_print_live(chat, conversation, printed)),
            asyncio.create_task(_send_lines(chat, lines, target_type, target_id, printed)),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:  # also on Ctrl-C: stop both before the client closes under them
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
        return max(task.result() for task in done)
    finally:
        await chat.close()


def _typing_notice(user: str, conversation: str) -> Callable[[TypingEvent], None]:
    def notice(event: TypingEvent) -> None:
        if event.conversation_id == conversation and event.user_id != user and event.state == "start":
            _say(f"({event.user_id} is typing...)")

    return notice


async def _show_missed(chat: ChatClient, conversation: str, history: int, printed: set[str]) -> None:
    """Everything up to the sign-in's last seq is queued by connect(): summarise it."""
    from chat_events.client import GapNotRecoverable

    ours: deque[Delivery] = deque(maxlen=history or None)
    skipped = 0
    others: Counter[str] = Counter()
    while chat.last_seq < chat.sign_in_info.last_user_seq:
        try:
            delivery = await chat.receive(timeout=2)
        except GapNotRecoverable as gap:
            _say(f"(messages {gap.from_seq}..{gap.to_seq} could not be recovered)")
            continue
        except TimeoutError:
            break
        if delivery.conversation_id != conversation:
            others[delivery.conversation_id] += 1
        elif history:
            skipped += len(ours) == ours.maxlen
            ours.append(delivery)
        else:
            skipped += 1
    for other, count in sorted(others.items()):
        _say(f"({count} new message{'s' if count > 1 else ''} in {other})")
    if skipped:
        _say(f"({skipped} earlier message{'s' if skipped > 1 else ''} not shown)")
    for delivery in ours:
        printed.add(str(delivery.message.get("message_id")))
        _say(format_message(delivery.message))


async def _print_live(chat: ChatClient, conversation: str, printed: set[str]) -> int:
    from chat_events.client import ConnectionLost, GapNotRecoverable

    while True:
        try:
            delivery = await chat.receive()
        except GapNotRecoverable as gap:
            _say(f"(messages {gap.from_seq}..{gap.to_seq} could not be recovered)")
            continue
        except ConnectionLost as exc:
            _say(f"connection ended: {exc}")
            return 1
        if delivery.conversation_id != conversation:
            _say(f"(new message in {delivery.conversation_id})")
            continue
        message_id = str(delivery.message.get("message_id"))
        if message_id not in printed:  # our own sends come back too; printed when acknowledged
            printed.add(message_id)
            _say(format_message(delivery.message))


async def _send_lines(
    chat: ChatClient, lines: asyncio.Queue[str | None], target_type: Any, target_id: str, printed: set[str]
) -> int:
    from chat_events.client import ChatClientError

    while (line := await lines.get()) is not None:
        text = line.strip()
        if text == QUIT:
            break
        if not text:
            continue
        try:
            result = await chat.send(target_type, target_id, text)
        except ChatClientError as exc:
            _say(f"! not sent: {exc}")
            continue
        except TimeoutError:
            _say("! not sent: no answer from the edge")
            continue
        if result.message_id not in printed:
            printed.add(result.message_id)
            sent_at = int(datetime.now().timestamp() * 1000)
            _say(format_message({"sender_id": chat.user_id, "content": text, "sent_at_ms": sent_at}))
    return 0


def _read_stdin(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    """Lines of stdin into ``lines`` (None at end of input), read on a daemon thread so that a
    blocked read never holds up exit (works for a terminal, a pipe and a file alike)."""

    def deliver(item: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: we are exiting
            loop.call_soon_threadsafe(lines.put_nowait, item)

    def read() -> None:
        for line in sys.stdin:
            deliver(line)
        deliver(None)

    threading.Thread(target=read, name="chat-stdin", daemon=True).start()
