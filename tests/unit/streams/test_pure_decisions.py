"""Pure decisions of the stream stages: seqs, recipients, fan-out mode, conversation rows,
pushes, sessions and edge liveness."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat_events.store.models import InboxEntry, Session
from chat_events.streams.inbox_logic import fold_conversation, preview_of, wants_push
from chat_events.streams.presence import EdgeMonitor, connect, disconnect, is_stale, superseded, worker_paused_ms
from chat_events.streams.recipients import may_post, plan_fanout, recipients_of
from chat_events.streams.records import output_envelope_id, timestamp_ms
from chat_events.streams.sequencing import SeqCounters


def test_counters_start_from_the_store_and_are_dense() -> None:
    counters = SeqCounters()
    assert counters.unknown(["a", "b"]) == {"a", "b"}
    counters.seed({"a": 41, "b": 0})
    assert [counters.allocate("a"), counters.allocate("a"), counters.allocate("b")] == [42, 43, 1]
    counters.commit()
    assert counters.unknown(["a", "b", "c"]) == {"c"}
    assert counters.allocate("a") == 44


def test_failed_write_leaves_no_gap() -> None:
    counters = SeqCounters()
    counters.seed({"a": 5})
    assert counters.allocate("a") == 6
    counters.forget()  # the store write failed
    assert counters.unknown(["a"]) == {"a"}
    counters.seed({"a": 5})  # reloaded: 6 was never stored
    assert counters.allocate("a") == 6


def test_seed_never_moves_a_counter_back() -> None:
    counters = SeqCounters()
    counters.seed({"a": 10})
    counters.seed({"a": 3})
    assert counters.allocate("a") == 11


@given(st.lists(st.sampled_from("abc"), max_size=60), st.integers(0, 1000))
def test_allocations_are_dense_per_key(keys: list[str], start: int) -> None:
    counters = SeqCounters()
    counters.seed(dict.fromkeys("abc", start))
    seen: dict[str, list[int]] = {}
    for key in keys:
        seen.setdefault(key, []).append(counters.allocate(key))
    for seqs in seen.values():
        assert seqs == list(range(start + 1, start + 1 + len(seqs)))


def test_direct_message_recipients() -> None:
    kwargs = dict(target_type="user", target_id="bob", group_members=(), blockers_of_sender=())
    assert recipients_of(sender_id="alice", **kwargs) == ("alice", "bob")  # type: ignore[arg-type]
    blocked = recipients_of(
        sender_id="alice", target_type="user", target_id="bob", group_members=(), blockers_of_sender={"bob"}
    )
    assert blocked == ("alice",)


def test_group_recipients_are_the_stored_members_minus_blockers() -> None:
    got = recipients_of(
        sender_id="alice",
        target_type="group",
        target_id="g",
        group_members={"alice", "carol", "bob", "dave"},
        blockers_of_sender={"dave", "zed"},
    )
    assert got == ("alice", "bob", "carol")


def test_only_members_post_in_groups() -> None:
    assert may_post("alice", target_type="group", group_members=frozenset({"alice"}))
    assert not may_post("mallory", target_type="group", group_members=frozenset({"alice"}))
    assert may_post("alice", target_type="user", group_members=frozenset())


@pytest.mark.parametrize(("size", "mode"), [(2, "write"), (10, "write"), (11, "read")])
def test_fanout_mode_by_size(size: int, mode: str) -> None:
    recipients = tuple(f"u{i}" for i in range(size))
    plan = plan_fanout(recipients, target_type="group", write_max_members=10)
    assert plan.mode == mode
    assert plan.inbox_recipients == (recipients if mode == "write" else recipients[:1])
    assert plan_fanout(("a", "b"), target_type="user", write_max_members=1).mode == "write"


def _entry(user: str, sender: str, conv_seq: int, user_seq: int) -> InboxEntry:
    return InboxEntry(
        user_id=user,
        user_seq=user_seq,
        message_id=f"m{conv_seq}",
        conversation_id="c",
        conversation_seq=conv_seq,
        sender_id=sender,
        created_at_ms=conv_seq * 10,
    )


def test_unread_counts_others_messages_and_own_message_reads_all() -> None:
    state = None
    for seq in (1, 2, 3):
        state = fold_conversation(state, _entry("bob", "alice", seq, seq))
    assert state is not None and (state.unread, state.read_seq, state.last_seq) == (3, 0, 3)
    state = fold_conversation(state, _entry("bob", "bob", 4, 4))
    assert (state.unread, state.read_seq, state.last_message_id, state.last_user_seq) == (0, 4, "m4", 4)
    state = fold_conversation(state, _entry("bob", "alice", 5, 5))
    assert (state.unread, state.last_activity_ms) == (1, 50)


def test_push_only_for_offline_unmuted_recipients_of_others_messages() -> None:
    assert wants_push(recipient_id="bob", sender_id="alice", online_sessions=0, muted=False)
    assert not wants_push(recipient_id="bob", sender_id="alice", online_sessions=1, muted=False)
    assert not wants_push(recipient_id="bob", sender_id="alice", online_sessions=0, muted=True)
    assert not wants_push(recipient_id="alice", sender_id="alice", online_sessions=0, muted=False)
    assert preview_of("image", "blob") == "[image]"
    assert len(preview_of("text", "x" * 500)) == 100


def _session(sid: str) -> Session:
    return Session(user_id="bob", session_id=sid, edge_id="e1", since_ms=1)


def test_presence_flips_only_on_first_and_last_session() -> None:
    first = connect((), _session("s1"))
    assert first.presence == "online"
    second = connect(first.sessions, _session("s2"))
    assert second.presence is None and len(second.sessions) == 2
    assert connect(second.sessions, _session("s2")).presence is None  # a replay
    one_left = disconnect(second.sessions, "s1")
    assert one_left.presence is None
    assert disconnect(one_left.sessions, "nope").presence is None
    assert disconnect(one_left.sessions, "s2").presence == "offline"
    assert disconnect((), "s2").presence is None


def test_a_device_signing_in_again_supersedes_only_its_own_older_sessions() -> None:
    def on(sid: str, edge: str, device: str | None, since: int) -> Session:
        return Session(user_id="bob", session_id=sid, edge_id=edge, device_id=device, since_ms=since)

    phone_a, laptop, phone_b = (
        on("s1", "edge-a", "phone", 1),
        on("s2", "edge-a", "laptop", 2),
        on("s3", "edge-b", "phone", 3),
    )
    assert superseded((phone_a, laptop), phone_b) == (phone_a,)  # across edges
    assert superseded((phone_a, laptop), phone_a) == ()  # a replayed connect supersedes nothing
    assert superseded((phone_a, laptop), on("s4", "edge-a", "tablet", 4)) == ()
    assert superseded((on("s5", "edge-a", None, 1),), on("s6", "edge-b", None, 2)) == ()  # no device id: no conflict
    # an older connect (replayed, or arriving late) never ends the newer session; it is the stale one
    assert superseded((phone_b,), phone_a) == () and is_stale((phone_b,), phone_a)
    assert not is_stale((phone_a, laptop), phone_b) and not is_stale((phone_b,), phone_b)
    tie_low, tie_high = on("s7", "edge-a", "phone", 9), on("s8", "edge-b", "phone", 9)  # same ms: by session id
    assert superseded((tie_low,), tie_high) == (tie_low,) and is_stale((tie_high,), tie_low)


def test_edge_monitor_expires_silent_and_stopping_edges_once() -> None:
    monitor = EdgeMonitor(default_timeout_ms=1000)
    monitor.heartbeat("a", now_ms=0, interval_ms=100)
    monitor.heartbeat("b", now_ms=0, interval_ms=1000)  # timeout = 3 intervals = 3000
    monitor.heartbeat("c", now_ms=0, interval_ms=100, stopping=True)
    assert monitor.due(now_ms=500) == ["c"]
    assert monitor.due(now_ms=1500) == ["a"]
    assert monitor.due(now_ms=1600) == []
    monitor.touch(["a"], now_ms=1600)  # expired edges stay expired until they beat again
    assert monitor.due(now_ms=9000) == ["b"]
    monitor.heartbeat("a", now_ms=9000, interval_ms=100)
    monitor.rearm(["b"])
    assert monitor.due(now_ms=9001) == ["b"]


def test_restarted_monitor_gives_grace() -> None:
    monitor = EdgeMonitor(default_timeout_ms=1000)
    monitor.heartbeat("a", now_ms=0, interval_ms=100)
    monitor.reset(now_ms=5000)
    assert monitor.due(now_ms=5500) == []
    assert monitor.due(now_ms=6001) == ["a"]


def test_the_time_a_worker_was_not_running_is_not_an_edges_silence() -> None:
    """A SIGSTOPped worker's first check after SIGCONT saw every edge silent for the whole stop
    (the heartbeats sent meanwhile still unread in its input) and ended their sessions: the
    back-pressure test's recipient then got nothing (a CI failure, twice: the second time the
    stop was just short of the 2x-interval threshold the first fix used, so every stall counts)."""
    assert worker_paused_ms(1.0, 1.0) == 0 and worker_paused_ms(0.9, 1.0) == 0
    assert worker_paused_ms(1.8, 1.0) == pytest.approx(800)
    monitor = EdgeMonitor(default_timeout_ms=2000)
    monitor.heartbeat("a", now_ms=0, interval_ms=300)
    monitor.credit(worker_paused_ms(1.8, 1.0))  # stopped 0.8 s beyond the check's own second
    assert monitor.due(now_ms=2700) == []  # 2.7 s after its heartbeat, but 1.9 s of it running
    assert monitor.due(now_ms=2801) == ["a"]  # a really silent edge still ends, 2 s of running later
    monitor.credit(0)
    assert monitor.due(now_ms=9000) == []  # an expired edge stays expired


def test_output_ids_are_deterministic_and_distinct() -> None:
    assert output_envelope_id("e1", "fanout", "bob") == output_envelope_id("e1", "fanout", "bob")
    assert output_envelope_id("e1", "fanout", "bob") != output_envelope_id("e1", "fanout", "carol")
    assert timestamp_ms("2026-01-02T03:04:05.678Z") == 1767323045678
