"""Pure decisions of the edge: tokens, rate limits, the connection registry, authorisation,
origins and sync gap detection."""

from __future__ import annotations

from unittest.mock import MagicMock

import pytest

from chat_events.api.authz import (
    HIDDEN_GROUP,
    conversation_id_problem,
    conversation_of,
    direct_participants,
    group_admin_refusal,
    group_outsider,
    may_read,
    message_id_for,
    send_refusal,
)
from chat_events.api.connection import Connection
from chat_events.api.origins import origin_allowed, parse_origins
from chat_events.api.ratelimit import RateLimiter, TokenBucket
from chat_events.api.registry import ConnectionRegistry
from chat_events.api.sync import Gap, contiguous_prefix
from chat_events.api.tokens import TokenError, issue_token, verify_token

SECRET = "s" * 32


def test_tokens_verify_and_expire() -> None:
    token, expires_ms = issue_token("alice", SECRET, ttl_s=60, now_s=1000)
    assert verify_token(token, SECRET, now_s=1010).user_id == "alice"
    assert expires_ms == 1_060_000
    with pytest.raises(TokenError) as expired:
        verify_token(token, SECRET, now_s=1061)
    assert expired.value.expired
    with pytest.raises(TokenError) as forged:
        verify_token(token, "t" * 32, now_s=1010)
    assert not forged.value.expired
    with pytest.raises(TokenError):
        verify_token(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), SECRET, now_s=1010)
    with pytest.raises(TokenError):
        verify_token("not-a-token", SECRET)


def test_token_bucket_allows_a_burst_then_says_when() -> None:
    bucket = TokenBucket(rate_per_s=10, burst=3, updated_s=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0, 0, 0]
    assert bucket.take(0.0) == 100  # one token every 100 ms
    assert bucket.take(0.1) == 0


def test_rate_limiter_reports_the_first_refusal_of_a_streak_once() -> None:
    limiter = RateLimiter(rate_per_s=1, burst=1)
    assert limiter.take("u", 0.0) == (0, False)
    assert limiter.take("u", 0.0)[1] is True
    assert limiter.take("u", 0.1)[1] is False
    assert limiter.take("u", 5.0) == (0, False)
    assert limiter.take("u", 5.0)[1] is True
    assert limiter.take("other", 5.0) == (0, False)


def conn(user: str, device: str, session: str) -> Connection:
    return Connection(user_id=user, device_id=device, session_id=session, socket=MagicMock(), queue_max=10)


def test_registry_replaces_the_same_device_and_caps_connections() -> None:
    registry = ConnectionRegistry(max_per_user=2)
    first = conn("u", "phone", "s1")
    assert registry.add(first).admitted
    again = registry.add(conn("u", "phone", "s2"))
    assert again.admitted and again.replaced is first
    assert registry.add(conn("u", "laptop", "s3")).admitted
    assert not registry.add(conn("u", "tablet", "s4")).admitted  # cap of 2
    assert sorted(c.session_id for c in registry.of_user("u")) == ["s2", "s3"]
    assert not registry.remove(first)  # already replaced: not removed twice
    assert len(registry) == 2


def test_registry_rooms() -> None:
    registry = ConnectionRegistry(max_per_user=5)
    a = conn("a", "d", "s1")
    registry.add(a)
    registry.join_room(a, "room1", 7)
    assert registry.in_room("room1") == (a,) and a.room_seq == 7
    registry.join_room(a, "room2", 0)
    assert registry.in_room("room1") == ()
    registry.remove(a)
    assert registry.in_room("room2") == ()


def test_a_socket_drops_deliveries_it_already_pushed() -> None:
    c = conn("u", "d", "s")
    assert c.push_delivery(1, "m1")
    assert not c.push_delivery(1, "m1 again")
    assert c.push_delivery(3, "m3")  # a gap is the client's to fill by sync
    assert not c.push_delivery(2, "m2 late")


def test_a_slow_socket_is_closed_not_waited_for() -> None:
    c = conn("u", "d", "s")
    assert all(c.push(f"f{i}") for i in range(10))
    assert not c.push("one too many")
    assert c.close_code == 1013


def test_send_authorisation() -> None:
    assert send_refusal("a", "user", "b", None) is None
    assert send_refusal("a", "user", "a", None) is not None
    assert send_refusal("a", "group", "g", frozenset({"a", "b"})) is None
    outsider, missing = send_refusal("c", "group", "g", frozenset({"a", "b"})), send_refusal("a", "group", "g", None)
    assert outsider == missing == HIDDEN_GROUP == "no such group, or you are not a member"  # no probing of ids


def test_read_authorisation() -> None:
    assert may_read("a", "dm:a:b", None) and may_read("b", "dm:a:b", None)
    assert not may_read("c", "dm:a:b", None)
    assert may_read("a", "g1", frozenset({"a"})) and not may_read("a", "g1", frozenset({"b"}))
    assert not may_read("a", "g1", None)
    assert direct_participants("dm:a:b") == ("a", "b") and direct_participants("g1") is None


@pytest.mark.parametrize(
    ("conversation_id", "problem"),
    [
        ("dm:victim:attacker", "sorted order: dm:attacker:victim"),
        ("dm:..:attacker", "two user ids"),
        ("dm:a:b:c", "two user ids"),
        ("dm:a:", "two user ids"),
        ("dm:a:a", "two different users"),
        ("../g1", "or a group id"),
    ],
)
def test_non_canonical_conversation_ids_are_refused_not_read(conversation_id: str, problem: str) -> None:
    found = conversation_id_problem(conversation_id)
    assert found is not None and problem in found
    assert direct_participants(conversation_id) is None
    assert not may_read("attacker", conversation_id, None) and not may_read("victim", conversation_id, None)


def test_canonical_conversation_ids_pass() -> None:
    assert conversation_id_problem("dm:attacker:victim") is None and conversation_id_problem("g-1") is None


def test_group_administration() -> None:
    members = frozenset({"owner", "m"})
    assert group_admin_refusal("m", "owner", members, adding=True, subject_id="x") is None
    assert group_admin_refusal("m", "owner", members, adding=False, subject_id="m") is None  # leave
    assert group_admin_refusal("owner", "owner", members, adding=False, subject_id="m") is None
    assert group_admin_refusal("m", "owner", members, adding=False, subject_id="owner") is not None
    assert group_admin_refusal("owner", "owner", frozenset({"m"}), adding=False, subject_id="m") is None


def test_outsiders_get_one_answer_from_group_administration_whether_the_group_exists_or_not() -> None:
    for members, owner in ((frozenset({"owner", "m"}), "owner"), (None, None)):
        assert group_admin_refusal("x", owner, members, adding=True, subject_id="y") == HIDDEN_GROUP
        assert group_admin_refusal("x", owner, members, adding=False, subject_id="m") == HIDDEN_GROUP
        assert group_admin_refusal("x", owner, members, adding=False, subject_id="x") == HIDDEN_GROUP  # leave
    assert (
        group_outsider("x", frozenset({"m"}))
        and group_outsider("m", None)
        and not group_outsider("m", frozenset({"m"}))
    )
    assert not group_outsider("owner", frozenset({"m"}), "owner")  # the owner knows the group exists


def test_message_ids_are_stable_per_sender_and_nonce() -> None:
    assert message_id_for("a", "n1") == message_id_for("a", "n1")
    assert message_id_for("a", "n1") != message_id_for("b", "n1") != message_id_for("a", "n2")
    assert conversation_of("b", "user", "a") == "dm:a:b" and conversation_of("a", "group", "g") == "g"


def test_origins() -> None:
    allowed = parse_origins("https://chat.example.com, http://localhost:3000/")
    assert origin_allowed(None, allowed)
    assert origin_allowed("https://chat.example.com", allowed)
    assert origin_allowed("http://LOCALHOST:3000", allowed)
    assert not origin_allowed("https://evil.example.com", allowed)
    assert not origin_allowed("http://localhost:3001", allowed)
    assert origin_allowed("https://anything", parse_origins("*"))


@pytest.mark.parametrize(
    ("after", "seqs", "expected"),
    [
        (0, [1, 2, 3], (3, None)),
        (5, [], (0, None)),
        (5, [6, 7, 9, 10], (2, None)),  # a hole later shortens the page
        (5, [8, 9], (0, Gap(6, 7, 7))),  # a hole at the start is not recoverable
    ],
)
def test_sync_contiguity(after: int, seqs: list[int], expected: tuple[int, Gap | None]) -> None:
    assert contiguous_prefix(after, seqs) == expected
