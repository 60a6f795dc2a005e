"""The store contract for presence (issue 16, item 6): online from the sessions, last seen (the
time the user's last session ended, only ever raised) and the setting that hides it (last writer
wins). Runs on every adapter (``conftest.py``) and on the Cassandra stand-in
(``tests/unit/test_cassandra_presence_store.py``)."""

from __future__ import annotations

from chat_events.store.models import Session
from chat_events.store.port import MessageStore
from chat_events.store.presence_state import PresenceState


def session(user_id: str, session_id: str, since_ms: int = 10) -> Session:
    return Session(user_id=user_id, session_id=session_id, edge_id="edge-1", device_id="d1", since_ms=since_ms)


async def test_a_user_never_seen_is_offline_with_no_last_seen_and_shows_it(store: MessageStore) -> None:
    assert await store.presence_of(["ghost"]) == {
        "ghost": PresenceState(user_id="ghost", online=False, last_seen_ms=None, show_last_seen=True)
    }
    assert await store.presence_of([]) == {}


async def test_online_follows_the_sessions_and_last_seen_the_ends(store: MessageStore) -> None:
    await store.save_session(session("alice", "s1"))
    assert (await store.presence_of(["alice"]))["alice"].online
    await store.end_session("alice", "s1", at_ms=500)
    await store.record_last_seen("alice", 500)
    assert await store.presence_of(["alice", "bob"]) == {
        "alice": PresenceState(user_id="alice", online=False, last_seen_ms=500, show_last_seen=True),
        "bob": PresenceState(user_id="bob", online=False, last_seen_ms=None, show_last_seen=True),
    }
    await store.save_session(session("alice", "s2", since_ms=600))  # back: online, last seen kept
    assert await store.presence_of(["alice"]) == {
        "alice": PresenceState(user_id="alice", online=True, last_seen_ms=500, show_last_seen=True)
    }


async def test_last_seen_is_only_ever_raised(store: MessageStore) -> None:
    await store.record_last_seen("alice", 500)
    await store.record_last_seen("alice", 500)  # a replay
    await store.record_last_seen("alice", 300)  # an older disconnect, late
    assert (await store.presence_of(["alice"]))["alice"].last_seen_ms == 500
    await store.record_last_seen("alice", 900)
    assert (await store.presence_of(["alice"]))["alice"].last_seen_ms == 900


async def test_the_last_seen_setting_is_last_writer_wins_and_independent_of_last_seen(store: MessageStore) -> None:
    await store.set_show_last_seen("alice", False, at_ms=200)  # before any last seen: a row of its own
    await store.set_show_last_seen("alice", True, at_ms=100)  # older, replayed late: ignored
    await store.record_last_seen("alice", 700)  # keeps the setting
    assert (await store.presence_of(["alice"]))["alice"] == PresenceState(
        user_id="alice", online=False, last_seen_ms=700, show_last_seen=False
    )
    await store.set_show_last_seen("alice", True, at_ms=300)
    await store.record_last_seen("alice", 600)  # older: the last seen stays, the setting too
    assert (await store.presence_of(["alice"]))["alice"] == PresenceState(
        user_id="alice", online=False, last_seen_ms=700, show_last_seen=True
    )
    await store.set_show_last_seen("bob", False, at_ms=1)
    assert {u: p.show_last_seen for u, p in (await store.presence_of(["alice", "bob", "carol"])).items()} == {
        "alice": True,
        "bob": False,
        "carol": True,
    }
