"""How up reads its edge's readiness, and the edge's listening socket."""

from __future__ import annotations

import socket

import pytest

from chat_events.cli.edge_probe import edge_id_of, readyz_confirms, readyz_url
from chat_events.cli.listen import PortInUseError, bind_listener


def test_the_edge_id_comes_from_the_ready_line() -> None:
    printed = "edge vm-1a2b3c4d ready (delivery topic chat.edge.vm-1a2b3c4d) on 127.0.0.1:8000\n"
    logged = "2026-01-01 10:00:00 INFO chat_events.api.edge: edge vm-1a2b3c4d ready (delivery topic chat.edge.x)"
    assert edge_id_of(printed) == edge_id_of(logged) == "vm-1a2b3c4d"
    assert edge_id_of("worker ready") is None and edge_id_of(None) is None


def test_only_our_edge_saying_ready_counts() -> None:
    assert readyz_confirms(200, {"ready": True, "edge_id": "e-1"}, "e-1")
    assert not readyz_confirms(200, {"ready": True, "edge_id": "someone-else"}, "e-1")
    assert not readyz_confirms(503, {"ready": False, "edge_id": "e-1"}, "e-1")
    assert not readyz_confirms(200, ["not", "ours"], "e-1")
    assert not readyz_confirms(200, {"status": "ok"}, "e-1")  # another server's 200


def test_wildcard_addresses_are_asked_on_loopback() -> None:
    assert readyz_url("0.0.0.0", 8000) == "http://127.0.0.1:8000/readyz"
    assert readyz_url("::", 8000) == "http://[::1]:8000/readyz"
    assert readyz_url("127.0.0.1", 81) == "http://127.0.0.1:81/readyz"


def test_a_port_in_use_is_a_clear_error_naming_the_flag() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is in use.*--edge-port") as refused:
            bind_listener("127.0.0.1", port, flag="--edge-port")
        assert refused.value.code == "port_in_use"


def test_a_free_port_is_bound_for_uvicorn_to_listen_on() -> None:
    sock = bind_listener("127.0.0.1", 0)
    try:
        assert sock.getsockname()[1] > 0
    finally:
        sock.close()
