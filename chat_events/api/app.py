"""The edge's FastAPI app: ``/ws`` plus the HTTP API, resources opened in the lifespan.

``create_app(settings)`` builds it without IO; uvicorn (``chat-events edge``) runs the lifespan,
which starts the :class:`EdgeNode` (Kafka, store, delivery consumer, heartbeats) and stops it
gracefully: sockets closed with 1001 and a userDisconnected published for each.

``/ws`` is served straight from the ASGI entry point, not through FastAPI's middleware and
routing: each of those layers is a coroutine frame (and exit stacks, a second ``WebSocket``,
dependency state) held for as long as the socket is open, ~12 KiB per idle socket in all.
Nothing of them applies to a WebSocket here (no dependencies, no HTTP exception handlers).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, WebSocket
from starlette.types import Receive, Scope, Send

from chat_events.api.block_routes import router as block_router
from chat_events.api.conversation_routes import router as conversation_router
from chat_events.api.edge import EdgeNode
from chat_events.api.group_routes import router as group_router
from chat_events.api.http_errors import install_error_handlers
from chat_events.api.http_routes import ApiError, api_error_response, router
from chat_events.api.message_routes import router as message_router
from chat_events.api.origins import origin_allowed, parse_origins
from chat_events.api.presence_routes import router as presence_router
from chat_events.api.protocol import Close
from chat_events.api.ws_session import WsSession
from chat_events.settings import Settings

log = logging.getLogger(__name__)

WS_PATH = "/ws"


def route_path(scope: Scope) -> str:
    """The path without the ``root_path`` prefix (as Starlette's router matches it)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :]
    return path


class EdgeApp(FastAPI):
    """FastAPI for the HTTP API; a WebSocket on ``/ws`` is handed straight to ``ws_handler``."""

    def __init__(self, *, ws_handler: Callable[[WebSocket], Awaitable[None]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ws_handler = ws_handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and route_path(scope) == WS_PATH:
            await self._ws_handler(WebSocket(scope, receive, send))
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, edge: EdgeNode | None = None) -> EdgeApp:
    node = edge or EdgeNode(settings)
    allowed = parse_origins(settings.allowed_origins)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await node.start()
        try:
            yield
        finally:
            await node.stop()

    async def websocket(socket: WebSocket) -> None:
        if not origin_allowed(socket.headers.get("origin"), allowed):
            log.info("refused a WebSocket from a disallowed Origin")
            await socket.close(code=Close.ORIGIN_NOT_ALLOWED)  # before accept: HTTP 403
            return
        if not node.ready:
            await socket.close(code=Close.TRY_AGAIN_LATER)
            return
        await socket.accept()
        await WsSession(node, socket).run()

    app = EdgeApp(title="chat-events edge", version="1", lifespan=lifespan, ws_handler=websocket)
    app.state.edge = node
    app.include_router(router)
    app.include_router(conversation_router)
    app.include_router(block_router)
    app.include_router(group_router)
    app.include_router(presence_router)
    app.include_router(message_router)
    app.add_exception_handler(ApiError, api_error_response)
    install_error_handlers(app)  # routing, parsing and validation errors: {"code", "message"} too

    return app
