"""SyncAck (issue 15, item 8): the pure progress decisions, and the sessions stage writing a
batch's acks before the session change that follows them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from chat_events.events.factory import new_envelope
from chat_events.events.types import DeviceAcked, Event, UserConnected
from chat_events.store.embedded import EmbeddedStore
from chat_events.store.models import Session
from chat_events.store.progress import DeviceProgress, advanced, resume_seq, sync_start
from chat_events.streams.records import Incoming, SourceRecord
from chat_events.streams.user_events import UserEventsStage


def _p(user: str, device: str, seq: int, at_ms: int = 0) -> DeviceProgress:
    return DeviceProgress(user_id=user, device_id=device, acked_seq=seq, acked_at_ms=at_ms)


def test_the_highest_ack_per_device_is_written_only_above_what_is_stored() -> None:
    acks = [_p("a", "phone", 5, 1), _p("a", "phone", 9, 2), _p("a", "phone", 7, 3), _p("a", "laptop", 2, 4)]
    assert advanced({}, acks) == [_p("a", "phone", 9, 2), _p("a", "laptop", 2, 4)]
    stored = {("a", "phone"): _p("a", "phone", 9), ("a", "laptop"): _p("a", "laptop", 1)}
    assert advanced(stored, acks) == [_p("a", "laptop", 2, 4)]  # 9 again (a replay) and 7 (older) change nothing
    assert advanced({}, [_p("a", "phone", 0)]) == []


def test_an_ack_is_capped_at_the_users_highest_seq() -> None:
    acks = [_p("a", "phone", 50), _p("b", "phone", 3)]
    assert advanced({}, acks, {"a": 12, "b": 40}) == [_p("a", "phone", 12), _p("b", "phone", 3)]
    assert advanced({}, [_p("c", "phone", 3)], {}) == []  # a user with no seq at all


@given(st.lists(st.integers(min_value=0, max_value=50), max_size=20), st.integers(min_value=0, max_value=50))
def test_progress_is_the_maximum_of_everything_acked(seqs: list[int], stored_seq: int) -> None:
    stored = {("a", "d"): _p("a", "d", stored_seq)} if stored_seq else {}
    written = advanced(stored, [_p("a", "d", s) for s in seqs])
    final = written[0].acked_seq if written else stored_seq
    assert final == max([stored_seq, *seqs])


def test_resume_and_sync_start() -> None:
    assert resume_seq(7, 10) == 7
    assert resume_seq(12, 10) == 10  # never beyond what exists
    assert resume_seq(0, 0) == 0
    assert sync_start(3, 9, 5) == 3  # a seq the client gives is what it gets
    assert sync_start(0, 9, 5) == 0
    assert sync_start(None, 9, 5) == 9  # acked further on this socket
    assert sync_start(None, 2, 5) == 5  # the stored progress at sign-in


class _Recording(EmbeddedStore):
    """The embedded store, recording the order of progress and session writes."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes: list[tuple[str, object]] = []

    async def max_user_seqs(self, user_ids: Iterable[str]) -> dict[str, int]:
        return dict.fromkeys(user_ids, 100)

    async def advance_device_progress(self, progress: Sequence[DeviceProgress]) -> None:
        self.writes.append(("progress", [(p.device_id, p.acked_seq) for p in progress]))
        await super().advance_device_progress(progress)

    async def save_session(self, session: Session) -> None:
        self.writes.append(("session", session.device_id))
        await super().save_session(session)


def _incoming(event: Event, offset: int, *, user_id: str | None = "alice") -> Incoming:
    envelope = new_envelope(event, user_id=user_id, session_id=f"s-{offset}")
    return Incoming(SourceRecord("chat.user-events", 0, offset, b"alice", b""), envelope)


async def test_the_sessions_stage_stores_acks_before_the_next_session_change(tmp_path: Path) -> None:
    store = _Recording(tmp_path / "store.sqlite3")
    async with store:
        stage = UserEventsStage(
            store,
            presence_topic="chat.presence",
            user_events_topic="chat.user-events",
            edge_topic=lambda edge: f"chat.edge.{edge}",
            rate_limit_window_ms=60_000,
            edge_timeout_ms=10_000,
        )
        batch = [
            _incoming(DeviceAcked(device_id="phone", seq=5, received_at_ms=1), 0),
            _incoming(DeviceAcked(device_id="phone", seq=3, received_at_ms=2), 1),
            _incoming(UserConnected(edge_id="e1", device_id="phone"), 2),
            _incoming(DeviceAcked(device_id="phone", seq=500, received_at_ms=3), 3),
            _incoming(DeviceAcked(device_id="laptop", seq=4, received_at_ms=4), 4),
            _incoming(DeviceAcked(device_id="tablet", seq=4, received_at_ms=5), 5, user_id=None),
        ]
        result = await stage.handle(batch)
        assert store.writes == [  # "*": the user's highest ack over all devices (delivery receipts)
            ("progress", [("phone", 5), ("*", 5)]),
            ("session", "phone"),
            ("progress", [("phone", 100), ("laptop", 4), ("*", 100)]),  # 500 capped at the user's highest seq
        ]
        assert [r.record.offset for r in result.rejects] == [5]  # an ack without a user
        found = await store.device_progress([("alice", "phone"), ("alice", "laptop")])
        assert {k[1]: p.acked_seq for k, p in found.items()} == {"phone": 100, "laptop": 4}
        await stage.handle(batch[:2])  # replayed, older: nothing goes back
        assert (await store.device_progress([("alice", "phone")]))[("alice", "phone")].acked_seq == 100
