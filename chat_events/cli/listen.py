"""The edge's listening socket, bound before anything else starts.

uvicorn binds its port only after the app's lifespan has started (the edge's Kafka clients,
its first heartbeat to the workers), and reports a port in use as a log line and ``exit(1)``,
which ``up``'s supervisor took for a crash to retry. Binding first makes a port in use a clear
error at once, before the edge tells anyone it exists, with an exit status that says "do not
restart" (``supervisor.EXIT_CONFIG``); once bound, nobody else can take the port, so what
answers on it is this process.
"""

from __future__ import annotations

import errno
import socket

from chat_events.errors import ConfigurationError


class PortInUseError(ConfigurationError):
    code = "port_in_use"


def bind_listener(host: str, port: int, *, flag: str = "--port") -> socket.socket:
    """A TCP socket bound to ``host:port`` (0 = any free port), not yet listening (uvicorn
    listens on it). A port in use raises :class:`PortInUseError` naming ``flag``."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ConfigurationError(f"cannot listen on {host!r}: {exc}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restarts need no wait
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"port {port} on {host} is in use by another program (is an edge or `chat-events up` "
                f"already running?); pick another with {flag} (0 = any)"
            ) from None
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock
