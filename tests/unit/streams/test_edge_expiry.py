"""The edge check ends nothing while the sessions stage is behind on its input (heartbeats it has
not read are not an edge's silence) and credits that round to every edge."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from chat_events.settings import Settings
from chat_events.store.embedded import EmbeddedStore
from chat_events.streams.edge_expiry import EdgeExpiry
from chat_events.streams.records import Output
from chat_events.streams.user_events import UserEventsStage


class _Sink:
    def __init__(self) -> None:
        self.sent: list[Output] = []

    async def send_outputs(self, outputs: Sequence[Output]) -> None:
        self.sent.extend(outputs)


async def test_no_edge_is_declared_dead_while_the_sessions_stage_is_behind(tmp_path: Path) -> None:
    now = [0.0]
    async with EmbeddedStore(tmp_path / "store.sqlite3") as store:
        stage = UserEventsStage(
            store,
            presence_topic="chat.presence",
            user_events_topic="chat.user-events",
            edge_topic=lambda edge: f"chat.edge.{edge}",
            rate_limit_window_ms=60_000,
            edge_timeout_ms=2_000,
            clock=lambda: now[0],
        )
        stage.monitor.heartbeat("edge-a", now_ms=0, interval_ms=300)
        behind = [True]

        async def caught_up() -> bool:
            return not behind[0]

        expiry = EdgeExpiry(Settings(data_dir=tmp_path), None, stage, _Sink(), set, caught_up=caught_up)  # type: ignore[arg-type]
        now[0] = 1.5  # 1.5 s of silence, but the stage is behind: credited
        await expiry.expire(interval_s=1.0)
        now[0] = 2.5
        await expiry.expire(interval_s=1.0)
        assert stage.monitor.due(now_ms=3_900) == []  # two rounds behind: 2 s credited
        behind[0] = False
        assert stage.monitor.due(now_ms=4_100) == ["edge-a"]  # 2 s of silence while current: dead
