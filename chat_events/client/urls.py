"""The edge's two addresses: HTTP base ``http://host:port`` and WebSocket ``ws://host:port/ws``."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

WS_PATH = "/ws"
DEFAULT_HTTP_URL = "http://127.0.0.1:8000"
_TO_WS = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_TO_HTTP = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


def ws_url(url: str) -> str:
    """``http://h:p`` (or ``ws://h:p``, with or without ``/ws``) -> ``ws://h:p/ws``; https -> wss."""
    parts = urlsplit(url.strip() if "://" in url else f"http://{url.strip()}")
    scheme = _TO_WS.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"not an http(s) or ws(s) URL: {url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith(WS_PATH):
        path += WS_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def http_url(url: str) -> str:
    """``ws://h:p/ws`` (or ``http://h:p``) -> ``http://h:p``, the HTTP API's base; wss -> https."""
    parts = urlsplit(url.strip() if "://" in url else f"http://{url.strip()}")
    scheme = _TO_HTTP.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ValueError(f"not an http(s) or ws(s) URL: {url!r}")
    path = parts.path.rstrip("/")
    if path.endswith(WS_PATH):
        path = path[: -len(WS_PATH)]
    return urlunsplit((scheme, parts.netloc, path, "", ""))
