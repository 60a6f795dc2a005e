"""CHAT_CASSANDRA_CONTACT_POINTS: host, host:port and [ipv6]:port entries, and what reaches the
driver's Cluster."""

from __future__ import annotations

import re

import pytest
from cassandra.connection import DefaultEndPoint

from chat_events.errors import ConfigurationError
from chat_events.settings import Settings
from chat_events.store.cassandra_contact import parse_contact_points
from chat_events.store.cassandra_driver import build_cluster


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("10.0.0.1", [("10.0.0.1", 9042)]),
        ("127.0.0.1:9043", [("127.0.0.1", 9043)]),
        (" a.example:9043 , b.example ,c.example:1", [("a.example", 9043), ("b.example", 9042), ("c.example", 1)]),
        ("[::1]:9043", [("::1", 9043)]),
        ("[fe80::1]", [("fe80::1", 9042)]),
        ("::1", [("::1", 9042)]),  # a bare IPv6 address has no port
        ("localhost:65535,", [("localhost", 65535)]),  # a trailing comma is harmless
        ("", []),
        (None, []),
    ],
)
def test_entries_parse_to_host_port_pairs(raw: str | None, expected: list[tuple[str, int]]) -> None:
    assert parse_contact_points(raw, 9042) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("host:abc", "port 'abc'"),
        ("host:", "port ''"),
        ("host:0", "port '0'"),
        ("host:70000", "port '70000'"),
        ("host:\uff19\uff10\uff14\uff12", "port"),  # fullwidth digits: str.isdigit() says yes
        (":9042", "empty host"),
        ("ok:9042, :9043", "empty host"),
        ("[::1:9043", "missing ']'"),
        ("[::1]9043", "expected ':port'"),
        ("[nothost]:9043", "not an IPv6 address"),
        ("a:b:c", "[address]:port"),
        ("my host:9042", "not a host name"),
    ],
)
def test_garbage_is_a_configuration_error_naming_the_entry(raw: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match="CHAT_CASSANDRA_CONTACT_POINTS") as caught:
        parse_contact_points(raw, 9042)
    assert reason in str(caught.value)
    assert repr(raw.split(",")[-1].strip()) in str(caught.value)


def test_the_cluster_gets_host_port_tuples_and_resolves_them() -> None:
    """A ``host:port`` entry used to reach the driver as a host name: UnresolvableContactPoints."""
    cluster = build_cluster(
        Settings(cassandra_contact_points="127.0.0.1:9043, 127.0.0.2, [::1]:9044", cassandra_port=9050)
    )
    assert cluster.contact_points == [("127.0.0.1", 9043), ("127.0.0.2", 9050), ("::1", 9044)]
    assert cluster.port == 9050  # the default for peers the driver discovers
    assert sorted(cluster.endpoints_resolved) == sorted(
        [DefaultEndPoint("127.0.0.1", 9043), DefaultEndPoint("127.0.0.2", 9050), DefaultEndPoint("::1", 9044)]
    )


def test_a_bad_entry_fails_before_the_driver_sees_it() -> None:
    with pytest.raises(ConfigurationError, match=re.escape("'127.0.0.1:abc'")):
        build_cluster(Settings(cassandra_contact_points="127.0.0.1:abc"))
