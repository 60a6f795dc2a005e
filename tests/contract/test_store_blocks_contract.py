"""The store contract for blocks as the clients see them (issue 16, item 5): whom one user
blocks, with when each block took effect. Runs on every adapter (``conftest.py``) and on the
Cassandra stand-in (``tests/unit/test_cassandra_blocks_store.py``)."""

from __future__ import annotations

from chat_events.store.port import MessageStore


async def test_blocks_by_lists_the_active_blocks_with_their_time(store: MessageStore) -> None:
    await store.set_block("alice", "bob", active=True, at_ms=100)
    await store.set_block("alice", "carol", active=True, at_ms=200)
    await store.set_block("alice", "dave", active=True, at_ms=300)
    await store.set_block("alice", "dave", active=False, at_ms=400)  # unblocked: left out
    await store.set_block("erin", "alice", active=True, at_ms=500)  # someone blocking alice: not hers
    assert await store.blocks_by("alice") == {"bob": 100, "carol": 200}
    assert await store.blocks_by("nobody") == {}


async def test_blocks_by_follows_the_last_writer_and_replays_change_nothing(store: MessageStore) -> None:
    await store.set_block("alice", "bob", active=True, at_ms=100)
    await store.set_block("alice", "bob", active=True, at_ms=100)  # a replay
    await store.set_block("alice", "bob", active=False, at_ms=50)  # older than the block: ignored
    assert await store.blocks_by("alice") == {"bob": 100}
    await store.set_block("alice", "bob", active=False, at_ms=200)
    assert await store.blocks_by("alice") == {}
    await store.set_block("alice", "bob", active=True, at_ms=300)  # blocked again: its new time
    assert await store.blocks_by("alice") == {"bob": 300}
    assert (await store.blockers_of(["bob"]))["bob"] == frozenset({"alice"})
