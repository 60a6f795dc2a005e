"""The edge's ASGI entry point: ``/ws`` straight to the session, the rest through FastAPI; and
the uvicorn settings ``chat-events edge`` runs with."""

from __future__ import annotations

from typing import Any

import httpx

from chat_events.api.app import create_app, route_path
from chat_events.api.protocol import Close
from chat_events.cli.edge_cmd import build_server
from chat_events.settings import Settings


def test_route_path_strips_the_root_path() -> None:
    assert route_path({"path": "/ws"}) == "/ws"
    assert route_path({"path": "/chat/ws", "root_path": "/chat"}) == "/ws"
    assert route_path({"path": "/chatty/ws", "root_path": "/chat"}) == "/chatty/ws"
    assert route_path({"path": "/ws/", "root_path": ""}) == "/ws/"


async def websocket_reply(app: Any, path: str) -> list[dict[str, Any]]:
    """What the app sends to a WebSocket handshake on ``path``, until it closes."""
    inbound: list[dict[str, Any]] = [{"type": "websocket.connect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbound.pop(0) if inbound else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": path, "root_path": "", "headers": [], "query_string": b""}
    await app(scope, receive, send)
    return sent


async def test_ws_goes_to_the_session_and_http_to_fastapi() -> None:
    app = create_app(Settings())  # not started (no lifespan here): the edge is not ready
    assert await websocket_reply(app, "/ws") == [
        {"type": "websocket.close", "code": Close.TRY_AGAIN_LATER, "reason": ""}
    ]
    elsewhere = await websocket_reply(app, "/elsewhere")  # FastAPI's router: no such route
    assert [m["type"] for m in elsewhere] == ["websocket.close"] and elsewhere[0]["code"] != Close.TRY_AGAIN_LATER
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge") as http:
        health = await http.get("/healthz")
        assert health.status_code == 200 and health.json()["connections"] == 0
        assert (await http.get("/readyz")).status_code == 503


def test_permessage_deflate_is_declined_unless_enabled() -> None:
    assert build_server(Settings()).config.ws_per_message_deflate is False
    assert build_server(Settings(ws_per_message_deflate=True)).config.ws_per_message_deflate is True


def test_the_edge_runs_the_guarded_protocols() -> None:
    from chat_events.api.transport import EdgeConfig, GuardedHttpProtocol, GuardedWebSocketProtocol

    config = build_server(Settings(edge_header_timeout_s=3, edge_max_pending_per_address=7)).config
    assert isinstance(config, EdgeConfig)
    config.load()
    assert config.http_protocol_class is GuardedHttpProtocol and config.ws_protocol_class is GuardedWebSocketProtocol
    assert config.header_timeout_s == 3 and config.pending.max_per_address == 7
