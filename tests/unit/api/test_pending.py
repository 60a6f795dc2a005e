"""Pending connections per client address: the bookkeeping behind the slowloris cap."""

from __future__ import annotations

from chat_events.api.pending import PRE_SIGN_IN_EXTENSION, PendingConnections, signed_in


def test_an_address_holds_at_most_the_cap_and_others_are_unaffected() -> None:
    pending = PendingConnections(2)
    assert pending.admit(("10.0.0.1", 1)) and pending.admit(("10.0.0.1", 2))
    assert not pending.admit(("10.0.0.1", 3))  # the third from that address
    assert pending.admit(("10.0.0.2", 1))  # another address
    assert pending.pending("10.0.0.1") == 2 and len(pending) == 3
    pending.release(("10.0.0.1", 1))
    pending.release(("10.0.0.1", 1))  # idempotent
    pending.release(("10.0.0.1", 3))  # never admitted: nothing to release
    assert pending.pending("10.0.0.1") == 1
    assert pending.admit(("10.0.0.1", 4)) and not pending.admit(("10.0.0.1", 5))


def test_no_cap_and_no_peer() -> None:
    unlimited = PendingConnections(0)
    assert all(unlimited.admit(("10.0.0.1", port)) for port in range(1000))
    capped = PendingConnections(1)
    assert capped.admit(None) and capped.admit(None) and len(capped) == 0  # Unix sockets: not counted
    assert capped.admit(("h", 1)) and capped.admit(("h", 1))  # the same connection twice counts once


def test_signing_in_releases_through_the_scope() -> None:
    pending = PendingConnections(1)
    peer = ("10.0.0.1", 9)
    pending.admit(peer)
    scope = {"extensions": {PRE_SIGN_IN_EXTENSION: {"release": lambda: pending.release(peer)}}}
    signed_in(scope)
    assert pending.pending("10.0.0.1") == 0
    signed_in({"extensions": {}})  # another server: nothing to do
    signed_in({})
