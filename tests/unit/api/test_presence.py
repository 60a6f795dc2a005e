"""Presence for clients (issue 16, item 6): the pure rules (who sees whom, what is shown, bounds),
the frames' parsing, and the edge's subscription bookkeeping and push."""

from __future__ import annotations

from typing import Any
from unittest.mock import MagicMock

import orjson
import pytest

from chat_events.api.connection import Connection
from chat_events.api.presence_feed import PresenceFeed
from chat_events.api.presence_frames import PresenceSubscribe, PresenceUnsubscribe
from chat_events.api.presence_rules import (
    MAX_PRESENCE_IDS,
    direct_peers,
    group_ids,
    presence_view,
    presence_views,
    push_excluded,
    push_view,
    subscription_problem,
    user_ids_problem,
    visible,
)
from chat_events.api.protocol import Code, ProtocolError, SetSettings, parse_frame
from chat_events.events.conversations import direct_conversation_id
from chat_events.events.types import UserPresenceChanged
from chat_events.store.presence_state import PresenceState


def parse(frame: dict[str, Any]) -> Any:
    return parse_frame(orjson.dumps(frame), max_payload_bytes=1000).request


def refused(frame: dict[str, Any]) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse(frame)
    return caught.value


def state(user: str, *, online: bool = False, last_seen: int | None = None, show: bool = True) -> PresenceState:
    return PresenceState(user_id=user, online=online, last_seen_ms=last_seen, show_last_seen=show)


# --- who sees whom ---------------------------------------------------------------------------


def test_peers_are_the_other_users_of_the_viewers_direct_conversations() -> None:
    ids = [direct_conversation_id("alice", "bob"), direct_conversation_id("carol", "alice"), "team-1", "dm:x:y"]
    assert direct_peers("alice", ids) == {"bob", "carol"}
    assert group_ids(ids) == ["team-1"]


def test_a_viewer_sees_themselves_peers_and_members_of_their_groups_only() -> None:
    seen = visible(
        "alice",
        ["alice", "bob", "carol", "dave", "erin", "ghost"],
        peers=["bob"],
        groups=[frozenset({"alice", "carol"}), frozenset({"dave", "erin"}), None],  # not in the second
        blocked_by_viewer=[],
        blocking_viewer=[],
    )
    assert seen == {"alice", "bob", "carol"}


def test_a_block_either_way_hides_presence() -> None:
    seen = visible(
        "alice",
        ["bob", "carol", "dave"],
        peers=["bob", "carol", "dave"],
        groups=[],
        blocked_by_viewer=["bob"],  # alice blocks bob
        blocking_viewer=["carol"],  # carol blocks alice
    )
    assert seen == {"dave"}
    assert push_excluded(["x"], frozenset({"y"})) == {"x", "y"}


# --- what is shown ---------------------------------------------------------------------------


def test_views_show_last_seen_only_when_offline_and_not_hidden() -> None:
    assert presence_view("bob", state("bob", online=True, last_seen=5)) == {
        "user_id": "bob",
        "status": "online",
        "last_seen_ms": None,
    }
    assert presence_view("bob", state("bob", last_seen=5))["last_seen_ms"] == 5
    assert presence_view("bob", state("bob", last_seen=5, show=False)) == {
        "user_id": "bob",
        "status": "offline",
        "last_seen_ms": None,
    }
    assert presence_view("bob", None) == {"user_id": "bob", "status": "unknown", "last_seen_ms": None}


def test_answers_are_in_the_order_asked_once_each_and_unknown_for_the_invisible() -> None:
    states = {"bob": state("bob", online=True), "carol": state("carol", last_seen=9)}
    views = presence_views(["carol", "ghost", "bob", "carol"], states, frozenset({"bob", "carol"}))
    assert [(v["user_id"], v["status"]) for v in views] == [
        ("carol", "offline"),
        ("ghost", "unknown"),
        ("bob", "online"),
    ]
    hidden = presence_views(["bob"], states, frozenset())  # stored, but not someone alice may see
    assert hidden == [{"user_id": "bob", "status": "unknown", "last_seen_ms": None}]


def test_pushes_show_the_change_time_as_last_seen_unless_hidden() -> None:
    online = UserPresenceChanged(status="online", sessions=1, changed_at_ms=5)
    offline = UserPresenceChanged(status="offline", sessions=0, changed_at_ms=7)
    hidden = UserPresenceChanged(status="offline", sessions=0, changed_at_ms=7, show_last_seen=False)
    never = UserPresenceChanged(status="offline", sessions=0, changed_at_ms=0)
    assert push_view("bob", online) == {"user_id": "bob", "status": "online", "last_seen_ms": None}
    assert push_view("bob", offline)["last_seen_ms"] == 7
    assert push_view("bob", hidden)["last_seen_ms"] is None
    assert push_view("bob", never)["last_seen_ms"] is None


# --- bounds and parsing ----------------------------------------------------------------------


def test_user_id_lists_are_bounded_and_checked() -> None:
    assert user_ids_problem(["bob", "carol"]) is None
    assert user_ids_problem(["bob"] * (MAX_PRESENCE_IDS + 5)) is None  # duplicates count once
    assert user_ids_problem("bob") == ("user_ids", "must be an array of user ids")
    assert user_ids_problem([]) == ("user_ids", "must name at least one user")
    assert user_ids_problem(["bob", "no spaces"])[0] == "user_ids[1]"  # type: ignore[index]
    assert user_ids_problem(["bob", 7])[0] == "user_ids[1]"  # type: ignore[index]
    assert user_ids_problem([f"u{i}" for i in range(MAX_PRESENCE_IDS + 1)]) == ("user_ids", "at most 500 user ids")
    assert subscription_problem(400, 100) is None
    assert subscription_problem(400, 101) == "a socket watches at most 500 users (400 already)"


def test_presence_frames_parse_and_bad_ones_are_refused_with_5() -> None:
    assert parse({"type": "presence_subscribe", "data": {"user_ids": ["bob", "carol", "bob"]}}) == PresenceSubscribe(
        ("bob", "carol")
    )
    assert parse({"type": "presence_unsubscribe", "data": {}}) == PresenceUnsubscribe(None)
    assert parse({"type": "presence_unsubscribe", "data": {"user_ids": ["bob"]}}) == PresenceUnsubscribe(("bob",))
    for data, field in [
        ({}, "user_ids"),
        ({"user_ids": "bob"}, "user_ids"),
        ({"user_ids": ["bob", "a:b"]}, "user_ids[1]"),
        ({"user_ids": [f"u{i}" for i in range(501)]}, "user_ids"),
    ]:
        error = refused({"type": "presence_subscribe", "data": data})
        assert (error.code, error.data["field"], error.frame_type) == (Code.INVALID_FIELD, field, "presence_subscribe")


def test_the_settings_frame_takes_either_setting() -> None:
    assert parse({"type": "settings", "data": {"show_last_seen": False}}) == SetSettings(None, False)
    assert parse({"type": "settings", "data": {"read_receipts": True, "show_last_seen": True}}) == SetSettings(
        True, True
    )
    error = refused({"type": "settings", "data": {"show_last_seen": "no"}})
    assert (error.code, error.data["field"]) == (Code.INVALID_FIELD, "show_last_seen")


# --- the edge's subscriptions ----------------------------------------------------------------


def conn(user: str, session: str) -> Connection:
    return Connection(user_id=user, device_id=session, session_id=session, socket=MagicMock(), queue_max=10)


def test_pushes_reach_the_sockets_watching_a_user_until_they_unsubscribe_or_end() -> None:
    feed = PresenceFeed()
    alice, alice2, carol = conn("alice", "a1"), conn("alice", "a2"), conn("carol", "c1")
    feed.subscribe(alice, ["bob", "dave"])
    feed.subscribe(alice2, ["bob"])
    feed.subscribe(carol, ["bob"])
    online = UserPresenceChanged(status="online", sessions=1, changed_at_ms=5)
    assert feed.push("bob", online) == 3
    assert feed.push("erin", online) == 0  # nobody watches erin
    feed.unsubscribe(alice2, ["bob"])
    feed.drop(carol)
    assert feed.push("bob", online) == 1
    assert feed.watching(alice) == {"bob", "dave"}
    feed.unsubscribe(alice)
    assert not feed.watched("bob") and not feed.watched("dave") and feed.watching(alice) == frozenset()
    assert alice.queued == 2 and alice2.queued == 1 and carol.queued == 1


async def test_a_push_skips_watchers_blocked_by_the_user_or_blocking_them() -> None:
    feed = PresenceFeed()
    alice, carol, dave = conn("alice", "a1"), conn("carol", "c1"), conn("dave", "d1")
    for c in (alice, carol, dave):
        feed.subscribe(c, ["bob"])
    store, blockers = MagicMock(), MagicMock()

    async def blocks_by(user: str) -> dict[str, int]:
        return {"carol": 1} if user == "bob" else {}

    async def load(user: str) -> frozenset[str]:
        return frozenset({"dave"}) if user == "bob" else frozenset()

    store.blocks_by, blockers.load = blocks_by, load
    await feed.load_blocks(store, blockers, "bob")
    assert feed.push("bob", UserPresenceChanged(status="offline", sessions=0, changed_at_ms=5)) == 1
    assert (alice.queued, carol.queued, dave.queued) == (1, 0, 0)
