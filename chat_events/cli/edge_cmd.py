"""``chat-events edge``: one edge node (FastAPI + WebSocket) under uvicorn until Ctrl-C.

The first Ctrl-C/SIGTERM sheds the sockets gracefully (1001 going away + a userDisconnected
each, a stopping heartbeat) before uvicorn stops; a second one forces the exit.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from types import FrameType
from typing import Any

import uvicorn

from chat_events.api.app import create_app
from chat_events.api.edge import EdgeNode
from chat_events.api.transport import EdgeConfig
from chat_events.cli.listen import PortInUseError, bind_listener
from chat_events.cli.logs import LEVELS, configure_logging
from chat_events.settings import Settings
from chat_events.supervisor import EXIT_CONFIG


def register(sub: Any) -> None:
    edge = sub.add_parser("edge", help="run an edge node (WebSocket /ws + HTTP API) until Ctrl-C")
    edge.add_argument("--host", default=None, help="listen address (default CHAT_EDGE_HOST=127.0.0.1)")
    edge.add_argument("--port", type=int, default=None, help="listen port (default CHAT_EDGE_PORT=8000; 0 = any)")
    edge.add_argument(
        "--log-level",
        type=str.upper,
        choices=LEVELS,
        default=None,
        help="level of chat-events' own log lines (default CHAT_LOG_LEVEL=INFO; libraries log WARNING and up)",
    )
    edge.set_defaults(handler=run)


class EdgeServer(uvicorn.Server):
    """uvicorn, with our graceful socket shedding in front of its own shutdown."""

    def __init__(self, config: uvicorn.Config, node: EdgeNode) -> None:
        super().__init__(config)
        self._node = node
        self._shedding = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:  # one line whatever the log level: `up` waits for it
            node = self._node
            topic = node.catalog.edge_topic(node.edge_id).name
            print(f"edge {node.edge_id} ready (delivery topic {topic}) on {self._address()}", flush=True)

    def _address(self) -> str:
        bound = [sock.getsockname() for server in self.servers for sock in server.sockets or ()]
        if not bound:
            return f"{self.config.host}:{self.config.port}"
        host, port = bound[0][:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._shedding or self._loop is None:
            super().handle_exit(sig, frame)
            return
        self._shedding = True

        def shed() -> None:
            task = asyncio.ensure_future(self._node.shed_connections())
            task.add_done_callback(lambda _: super(EdgeServer, self).handle_exit(sig, frame))

        self._loop.call_soon_threadsafe(shed)


def build_server(settings: Settings, *, host: str | None = None, port: int | None = None) -> EdgeServer:
    node = EdgeNode(settings)
    config = EdgeConfig(  # uvicorn's, with a header deadline and a cap on pending connections (slowloris)
        create_app(settings, edge=node),
        header_timeout_s=settings.edge_header_timeout_s,
        max_pending_per_address=settings.edge_max_pending_per_address,
        host=host or settings.edge_host,
        port=settings.edge_port if port is None else port,
        ws_max_size=settings.ws_max_frame_bytes,
        ws_ping_interval=None,  # the protocol has its own heartbeat
        ws_per_message_deflate=settings.ws_per_message_deflate,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return EdgeServer(config, node)


def run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(args.log_level or settings.log_level)
    host = args.host or settings.edge_host
    port = settings.edge_port if args.port is None else args.port
    try:  # before anything starts: a port in use is a clear error, not a crash to retry
        listener = bind_listener(host, port, flag="--port or CHAT_EDGE_PORT (up: --edge-port)")
    except PortInUseError as exc:
        print(f"error: {exc.code}: {exc}", file=sys.stderr, flush=True)
        return EXIT_CONFIG
    server = build_server(settings, host=host, port=port)
    print(f"chat-events edge {server._node.edge_id} starting (store: {settings.store_kind})", flush=True)
    for sig in (signal.SIGINT, signal.SIGTERM):  # uvicorn re-raises the stop signal on exit: absorb it
        signal.signal(sig, lambda *_: None)
    server.run(sockets=[listener])
    print("edge stopped", flush=True)
    return 0
