"""``chat-events chat``: a small terminal chat on :mod:`chat_events.client` (development mode).

Gets a dev token over HTTP, checks the group (``--group``: it exists and we are a member),
signs in, prints what was missed and then live messages of one conversation (others are
summarised), and sends each line typed. What is printed when is decided by
:class:`~chat_events.cli.chat_view.ChatView`; this module only feeds it and prints. ``/quit``
or end of input leave (after waiting briefly for sends in flight), as does Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import threading
import uuid
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chat_events.cli.chat_view import ChatView, new_elsewhere
from chat_events.events.conversations import direct_conversation_id
from chat_events.settings import Settings

if TYPE_CHECKING:
    from chat_events.cli.read_marker import ReadMarker
    from chat_events.client import ChatClient, HttpApi, TypingEvent

QUIT = "/quit"
QUIT_WAIT_S = 5.0
"""At /quit or end of input: how long to wait for sends in flight and their deliveries."""
PENDING_AFTER_S = 1.0
"""A send not acknowledged this long is shown as pending."""
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
    refusal = target_refusal(args.user, args.to)
    if refusal is not None:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
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


def target_refusal(user: str, to: str | None) -> str | None:
    """Why the command line cannot work before anything is asked of the edge, or None."""
    if to is not None and to == user:
        return f"--to {to}: that is you (--as {user}); chat with another user"
    return None


def group_refusal(code: int, user: str, group_id: str, detail: str) -> str:
    """The start-up error for ``--group`` when ``GET /v1/groups/{id}`` refused (``code``). The
    edge answers a missing group and one ``user`` is not in alike (FORBIDDEN)."""
    from chat_events.api.protocol import Code

    if code == Code.FORBIDDEN:
        return (
            f"no group {group_id}, or {user} is not a member of it; a member adds you: chat-events group add "
            f"{group_id} {user} --as MEMBER (or create it: chat-events group create {group_id} --owner {user})"
        )
    return f"cannot check group {group_id}: {detail}"


class _Screen:
    """Prints the view's lines; ``settle`` waits (bounded) until no send is outstanding."""

    def __init__(self, view: ChatView) -> None:
        self.view = view
        self._changed = asyncio.Event()

    def show(self, lines: list[str]) -> None:
        for line in lines:
            _say(line)
        self._changed.set()

    async def settle(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self.view.outstanding:
                    self._changed.clear()
                    await self._changed.wait()


def _say(line: str) -> None:
    print(line, flush=True)


async def _chat(url: str, user: str, target_type: str, target_id: str, device: str, history: int) -> int:
    from chat_events.api.protocol import Code
    from chat_events.client import ChatClient, ChatClientError, ChatError, HttpApi

    try:
        async with HttpApi(url) as http:
            http.token = token = (await http.dev_token(user)).token
            if target_type == "group":
                await _check_group(http, user, target_id)
    except _Refused as refused:
        _say(f"error: {refused}")
        return 1
    except ChatError as exc:
        if exc.code == Code.NOT_FOUND:
            _say(f"error: {url} issues no dev tokens (the edge must run with CHAT_ENVIRONMENT=development)")
        else:
            _say(f"error: cannot get a token for {user} from {url}: {exc}")
        return 1
    conversation = conversation_of(user, target_type, target_id)
    screen = _Screen(ChatView(user, conversation))
    chat = ChatClient(
        url,
        token=token,
        device_id=device,
        auto_reconnect=True,
        on_typing=_typing_notice(user, conversation),
        on_connection=lambda event: screen.show(screen.view.connection(event)),
    )
    try:
        await chat.connect()
    except ChatClientError as exc:
        _say(f"error: cannot sign in at {url}: {exc}")
        await chat.close()
        return 1
    try:
        _say(f"signed in as {user} (device {device}, edge {chat.edge_id}); chatting in {conversation}; {QUIT} leaves")
        from chat_events.cli.read_marker import ReadMarker

        reader = ReadMarker(chat, conversation)
        await _show_missed(chat, screen, history, reader)
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        outbox: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        _read_stdin(asyncio.get_running_loop(), lines)
        tasks = {
            asyncio.create_task(_print_live(chat, screen, reader)),
            asyncio.create_task(_take_lines(chat, screen, lines, outbox)),
            asyncio.create_task(_send_outbox(chat, screen, outbox, target_type, target_id)),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:  # also on Ctrl-C: stop them all before the client closes under them
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
            await reader.close()
        return max(task.result() for task in done)
    finally:
        await chat.close()


class _Refused(Exception):
    """A start-up check failed; the message says why and what to do."""


async def _check_group(http: HttpApi, user: str, group_id: str) -> None:
    from chat_events.client import ChatError

    try:
        await http.get_group(group_id)
    except ChatError as exc:
        raise _Refused(group_refusal(exc.code, user, group_id, str(exc))) from None


def _typing_notice(user: str, conversation: str) -> Callable[[TypingEvent], None]:
    def notice(event: TypingEvent) -> None:
        if event.conversation_id == conversation and event.user_id != user and event.state == "start":
            _say(f"({event.user_id} is typing...)")

    return notice


async def _show_missed(chat: ChatClient, screen: _Screen, history: int, reader: ReadMarker) -> None:
    """Everything up to the sign-in's last seq is queued by connect(): summarise it."""
    from chat_events.client import GapNotRecoverable

    view = screen.view
    ours: deque[dict[str, Any]] = deque(maxlen=history or None)
    skipped = 0
    others: list[dict[str, Any]] = []
    while chat.last_seq < chat.sign_in_info.last_user_seq:
        try:
            delivery = await chat.receive(timeout=2)
        except GapNotRecoverable as gap:
            _say(f"(messages {gap.from_seq}..{gap.to_seq} could not be recovered)")
            continue
        except TimeoutError:
            break
        if delivery.conversation_id != view.conversation:
            others.append(delivery.message)
        elif history:
            skipped += len(ours) == ours.maxlen
            ours.append(delivery.message)
        else:
            skipped += 1
    screen.show(new_elsewhere(view.user, view.conversation, others))
    if skipped:
        _say(f"({skipped} earlier message{'s' if skipped > 1 else ''} not shown)")
    screen.show(view.history(ours))
    for message in ours:
        reader.shown(message)


async def _print_live(chat: ChatClient, screen: _Screen, reader: ReadMarker) -> int:
    from chat_events.client import ConnectionLost, GapNotRecoverable

    while True:
        try:
            delivery = await chat.receive()
        except GapNotRecoverable as gap:
            _say(f"(messages {gap.from_seq}..{gap.to_seq} could not be recovered)")
            continue
        except ConnectionLost as exc:
            screen.show(screen.view.ended(str(exc)))
            return 1
        screen.show(screen.view.message(delivery.message))
        reader.shown(delivery.message)


async def _take_lines(
    chat: ChatClient, screen: _Screen, lines: asyncio.Queue[str | None], outbox: asyncio.Queue[tuple[str, str]]
) -> int:
    """Typed lines into the outbox (each pending from now on) until /quit or end of input."""
    while (line := await lines.get()) is not None:
        text = line.strip()
        if text == QUIT:
            break
        if not text:
            continue
        key = str(uuid.uuid4())  # the send's client_msg_id: every retry reuses it
        screen.show(screen.view.typed(key, text, connected=chat.connected))
        outbox.put_nowait((key, text))
    await screen.settle(QUIT_WAIT_S)
    screen.show(screen.view.unsent())
    return 0


async def _send_outbox(
    chat: ChatClient, screen: _Screen, outbox: asyncio.Queue[tuple[str, str]], target_type: Any, target_id: str
) -> int:
    """One send at a time, in the order typed (the client retries and waits for reconnects)."""
    from chat_events.client import ChatClientError, ChatError

    view = screen.view
    while True:
        key, text = await outbox.get()
        send = asyncio.create_task(chat.send(target_type, target_id, text, client_msg_id=key))
        try:
            done, _ = await asyncio.wait({send}, timeout=PENDING_AFTER_S)
            if not done:
                screen.show(view.slow(key))
            result = await send
        except ChatError as exc:
            screen.show(view.failed(key, exc.code, exc.message))
        except ChatClientError as exc:
            screen.show(view.failed(key, None, str(exc)))
        except TimeoutError:
            screen.show(view.failed(key, None, "no answer from the edge"))
        else:
            screen.show(view.acked(key, result.message_id))
        finally:
            send.cancel()


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
