"""Origin allowlist for browser WebSockets (cross-site WebSocket hijacking protection)."""

from __future__ import annotations


def parse_origins(setting: str) -> frozenset[str]:
    return frozenset(o.strip().rstrip("/").lower() for o in setting.split(",") if o.strip())


def origin_allowed(origin: str | None, allowed: frozenset[str]) -> bool:
    """Clients that send no Origin (not a browser) pass; browsers must match the list exactly
    (scheme, host and port), or the list holds ``*``."""
    if origin is None:
        return True
    return "*" in allowed or origin.strip().rstrip("/").lower() in allowed
