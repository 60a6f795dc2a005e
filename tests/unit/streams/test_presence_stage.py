"""Last seen and its setting in the sessions stage (issue 16, item 6): the last session's end is
stored as last seen, presenceSettingsSet is stored and answered with the user's presence as it
is, every userPresenceChanged carries the setting, and replays change nothing."""

from __future__ import annotations

from pathlib import Path

from chat_events.events.factory import new_envelope
from chat_events.events.presence_events import PresenceSettingsSet
from chat_events.events.types import Event, UserConnected, UserDisconnected, UserPresenceChanged
from chat_events.store.embedded import EmbeddedStore
from chat_events.store.models import Session
from chat_events.streams.presence import current_presence
from chat_events.streams.records import Incoming, SourceRecord, StageResult, timestamp_ms
from chat_events.streams.user_events import UserEventsStage


def _incoming(event: Event, offset: int, session: str = "s1") -> Incoming:
    envelope = new_envelope(event, user_id="bob", session_id=session)
    return Incoming(SourceRecord("chat.user-events", 0, offset, b"bob", b""), envelope)


def _presence(result: StageResult) -> list[UserPresenceChanged]:
    return [o.envelope.payload for o in result.outputs if isinstance(o.envelope.payload, UserPresenceChanged)]


def test_current_presence_is_online_since_the_oldest_session_or_offline_since_last_seen() -> None:
    sessions = tuple(
        Session(user_id="bob", session_id=f"s{t}", edge_id="e", device_id=f"d{t}", since_ms=t) for t in (9, 4)
    )
    assert current_presence(sessions, 2) == ("online", 4)
    assert current_presence((), 7) == ("offline", 7)
    assert current_presence((), None) == ("offline", 0)


async def test_the_stage_stores_last_seen_and_the_setting_and_stamps_it(tmp_path: Path) -> None:
    async with EmbeddedStore(tmp_path / "store.sqlite3") as store:
        stage = UserEventsStage(
            store,
            presence_topic="chat.presence",
            user_events_topic="chat.user-events",
            edge_topic=lambda edge: f"chat.edge.{edge}",
            rate_limit_window_ms=60_000,
            edge_timeout_ms=10_000,
        )
        connect = _incoming(UserConnected(edge_id="e1", device_id="phone"), 0)
        hide = _incoming(PresenceSettingsSet(show_last_seen=False, set_at_ms=100), 1)
        leave = _incoming(UserDisconnected(reason="client_closed", code=1000, forced=False), 2)
        show = _incoming(PresenceSettingsSet(show_last_seen=True, set_at_ms=300), 3)
        first = _presence(await stage.handle([connect, hide]))
        since = timestamp_ms(connect.envelope.timestamp)
        assert [(p.status, p.sessions, p.changed_at_ms, p.show_last_seen) for p in first] == [
            ("online", 1, since, True),
            ("online", 1, since, False),  # the setting's change, sent as the presence it is
        ]
        left_at = timestamp_ms(leave.envelope.timestamp)
        second = _presence(await stage.handle([leave, show]))
        assert [(p.status, p.sessions, p.changed_at_ms, p.show_last_seen) for p in second] == [
            ("offline", 0, left_at, False),
            ("offline", 0, left_at, True),  # offline since the last seen
        ]
        stored = (await store.presence_of(["bob"]))["bob"]
        assert (stored.online, stored.last_seen_ms, stored.show_last_seen) == (False, left_at, True)
        replay = await stage.handle([hide, leave])  # an older setting and a disconnect already applied
        assert [p.status for p in _presence(replay)] == ["offline"]  # the setting's echo; no flip
        stored = (await store.presence_of(["bob"]))["bob"]
        assert (stored.last_seen_ms, stored.show_last_seen) == (left_at, True)
