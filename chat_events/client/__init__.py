"""An asyncio client of the edge's WebSocket protocol and HTTP API, for tests, benchmarks and bots.

    async with ChatClient("http://127.0.0.1:8000", token=token, device_id="laptop") as chat:
        await chat.send("user", "bob", "hi")
        async for delivery in chat.messages():
            print(delivery.sender_id, delivery.content)

The protocol is described in ``docs/protocol.md``; this package imports only its constants
(:mod:`chat_events.api.protocol`), never the server.
"""

from chat_events.client.client import ChatClient
from chat_events.client.connection import Connection
from chat_events.client.content import Command, Custom, Face, File, Image, Location, TypedContent, Voice
from chat_events.client.errors import ChatClientError, ChatError, ConnectionLost, GapNotRecoverable
from chat_events.client.http import DevToken, Group, HistoryPage, HttpApi
from chat_events.client.inbox import Inbox, Verdict, classify
from chat_events.client.models import (
    Delivery,
    RoomMessage,
    RoomPage,
    SendResult,
    SignInInfo,
    SyncPage,
    TypingEvent,
)
from chat_events.client.status import ConnectionEvent, ConnectionState
from chat_events.client.urls import DEFAULT_HTTP_URL, http_url, ws_url

__all__ = [
    "DEFAULT_HTTP_URL",
    "ChatClient",
    "ChatClientError",
    "ChatError",
    "Command",
    "Connection",
    "ConnectionEvent",
    "ConnectionLost",
    "ConnectionState",
    "Custom",
    "Delivery",
    "DevToken",
    "Face",
    "File",
    "GapNotRecoverable",
    "Group",
    "HistoryPage",
    "HttpApi",
    "Image",
    "Inbox",
    "Location",
    "RoomMessage",
    "RoomPage",
    "SendResult",
    "SignInInfo",
    "SyncPage",
    "TypedContent",
    "TypingEvent",
    "Verdict",
    "Voice",
    "classify",
    "http_url",
    "ws_url",
]
