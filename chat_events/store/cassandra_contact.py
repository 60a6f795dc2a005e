"""Parsing ``CHAT_CASSANDRA_CONTACT_POINTS``: comma-separated ``host``, ``host:port``,
``[ipv6]``, ``[ipv6]:port`` (or a bare IPv6 address) into ``(host, port)`` pairs.

The driver resolves each contact point with ``getaddrinfo``; handed ``"127.0.0.1:9043"`` as a
host it fails with ``UnresolvableContactPoints``, so the port is split off here and the pair
passed as a tuple (``Cluster(contact_points=[(host, port)])``, accepted since driver 3.x).
Pure: no driver import, no DNS.
"""

from __future__ import annotations

import ipaddress

from chat_events.errors import ConfigurationError

VARIABLE = "CHAT_CASSANDRA_CONTACT_POINTS"
_BAD_HOST_CHARS = frozenset(" \t/[]@")


def parse_contact_points(raw: str | None, default_port: int) -> list[tuple[str, int]]:
    """``(host, port)`` per entry, in order; ``default_port`` where an entry names none. Empty
    entries (a trailing comma) are skipped; anything else unparseable is a
    :class:`ConfigurationError` naming the entry."""
    return [_parse_one(entry.strip(), default_port) for entry in (raw or "").split(",") if entry.strip()]


def _parse_one(entry: str, default_port: int) -> tuple[str, int]:
    if entry.startswith("["):  # [ipv6] or [ipv6]:port
        host, sep, rest = entry[1:].partition("]")
        if not sep:
            raise _error(entry, "missing ']' after the IPv6 address")
        if rest and not rest.startswith(":"):
            raise _error(entry, "expected ':port' after ']'")
        if not _is_ipv6(host):
            raise _error(entry, "not an IPv6 address between '[' and ']'")
        return host, _port(entry, rest[1:]) if rest else default_port
    if entry.count(":") > 1:  # a bare IPv6 address: no port possible without brackets
        if not _is_ipv6(entry):
            raise _error(entry, "write an IPv6 address with a port as [address]:port")
        return entry, default_port
    host, sep, port = entry.partition(":")
    host = host.strip()
    if not host:
        raise _error(entry, "empty host")
    if _BAD_HOST_CHARS & set(host):
        raise _error(entry, "not a host name or address")
    return host, _port(entry, port) if sep else default_port


def _port(entry: str, text: str) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise _error(entry, f"port {text!r} is not a number from 1 to 65535")
    return int(text)


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _error(entry: str, reason: str) -> ConfigurationError:
    expected = "host, host:port or [ipv6]:port"
    return ConfigurationError(f"{VARIABLE}: bad contact point {entry!r}: {reason} (expected {expected})")
