"""Faults: a worker killed with SIGKILL mid-run, and a broker that lost all its data.

One checker holds the invariants after each: nothing lost, nothing stored or delivered twice,
no seq reused or skipped. It reads the store through the port (embedded SQLite, or Cassandra on
the ``kafka`` stack): ``tests/integration/store_checks.py``.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chat_events.codec import build_codec
from chat_events.events.types import ChatMessage
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.kafka.embedded import EmbeddedBroker
from chat_events.producers.publisher import EventPublisher
from chat_events.settings import Settings
from chat_events.store.factory import open_store
from chat_events.store.models import InboxEntry, Page
from chat_events.store.port import MessageStore
from tests.conftest import make_settings
from tests.integration.store_checks import check_invariants, inbox_count
from tests.integration.traffic import send_pairs
from tests.integration.worker_harness import WorkerProcess, wait_until
from tests.real_engines import Engines


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM", "SIGINT"])
async def test_worker_stopped_mid_run_loses_and_duplicates_nothing(
    kafka_target: KafkaTarget, worker_engine: str, tmp_path: Path, how: str
) -> None:
    """Killed hard, or asked to stop (which must end the process on its own, exit code 0), on
    either engine. The Faust engine's SIGTERM and SIGINT take the same path (both set the stop
    event): to keep CI time modest it runs SIGTERM on the embedded stack and SIGINT on Kafka."""
    if worker_engine == "faust" and how == ("SIGINT" if kafka_target.embedded else "SIGTERM"):
        pytest.skip("the Faust engine runs one stop signal per stack (the other one on the other stack)")
    settings = make_settings(
        kafka_target,
        tmp_path,
        worker_app_id=f"w-{uuid.uuid4().hex[:8]}",
        worker_engine=worker_engine,
        worker_session_timeout_s=6.0,
        worker_rebalance_timeout_s=3.0,
    )
    await ensure_topics(settings, kafka_target)
    users = [f"u{i}-{uuid.uuid4().hex[:4]}" for i in range(40)]
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    async with open_store(settings) as store:
        try:
            async with EventPublisher(settings, kafka_target, build_codec(settings)) as publisher:
                sending = asyncio.ensure_future(send_pairs(publisher, 5000, users))
                await wait_until(lambda: _at_least(store, users, 2000), timeout=120, what="a third of the run")
                if how == "kill -9":
                    worker.kill9()
                else:
                    assert worker.terminate(sig=signal.Signals[how]) == 0
                killed_at = await inbox_count(store, users)
                sent = await sending
                assert killed_at < 10_000, "the kill must land mid-run"
                worker.start()
                await wait_until(
                    lambda: _at_least(store, users, 10_000),
                    timeout=180,
                    what="every inbox entry after the restart",
                )
                await asyncio.sleep(1.0)  # anything replayed late would show up as a duplicate now
        finally:
            worker.stop()
        await check_invariants(store, sent)


async def _at_least(store: MessageStore, users: Sequence[str], n: int) -> bool:
    return await inbox_count(store, users) >= n


@pytest.mark.parametrize("store_kind", ["embedded", "cassandra"])
async def test_broker_data_lost_seqs_continue_from_the_store(
    request: pytest.FixtureRequest, tmp_path: Path, store_kind: str
) -> None:
    """The embedded broker keeps topics in memory: restarting it loses every record and offset.
    The counters then continue from the store (either adapter), so no seq is reused."""
    broker = EmbeddedBroker(0)
    broker.start()
    port = int(broker.bootstrap_servers.rsplit(":", 1)[1])
    target = KafkaTarget(broker.bootstrap_servers, embedded=True)
    store_settings: dict[str, object] = {}
    if store_kind == "cassandra":
        engines: Engines = request.getfixturevalue("engines")
        store_settings = {
            "cassandra_contact_points": engines.cassandra_contact_point(),
            "cassandra_keyspace": engines.keyspace(__name__),
        }
    settings: Settings = make_settings(
        target, tmp_path, worker_app_id=f"w-lost-{uuid.uuid4().hex[:8]}", **store_settings
    )
    users = [f"v{i}-{uuid.uuid4().hex[:4]}" for i in range(10)]
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        async with open_store(settings) as store:
            await ensure_topics(settings, target)
            worker.start()
            async with EventPublisher(settings, target, build_codec(settings)) as publisher:
                sent = await send_pairs(publisher, 200, users)
            await wait_until(lambda: _at_least(store, users, 400), timeout=60, what="first half")
            worker.stop()
            broker.stop()  # everything in the broker is gone
            broker = EmbeddedBroker(port)
            broker.start()
            await ensure_topics(settings, target)
            worker.start()
            async with EventPublisher(settings, target, build_codec(settings)) as publisher:
                sent.update(await send_pairs(publisher, 200, users))
            await wait_until(lambda: _at_least(store, users, 800), timeout=60, what="second half")
            await asyncio.sleep(0.5)
            await check_invariants(store, sent)
    finally:
        worker.stop()
        broker.stop()


@dataclass
class Rows:
    """Just the reads the checker makes, over rows a test writes directly: the real stores
    refuse a second inbox entry for one message, so a violation must be made by hand."""

    messages: list[ChatMessage] = field(default_factory=list)
    inbox: list[InboxEntry] = field(default_factory=list)

    async def conversation_messages(self, conversation_id: str, *, after_seq: int, limit: int) -> Page[ChatMessage]:
        found = sorted(
            (m for m in self.messages if m.conversation_id == conversation_id and m.seq > after_seq),
            key=lambda m: m.seq,
        )
        return Page(tuple(found[:limit]), has_more=len(found) > limit)

    async def max_conversation_seqs(self, conversation_ids: Iterable[str]) -> dict[str, int]:
        return {c: max((m.seq for m in self.messages if m.conversation_id == c), default=0) for c in conversation_ids}

    async def find_messages(self, message_ids: Iterable[str]) -> dict[str, ChatMessage]:
        wanted = set(message_ids)
        return {m.message_id: m for m in self.messages if m.message_id in wanted}

    async def inbox_after(self, user_id: str, after_seq: int, limit: int) -> Page[InboxEntry]:
        found = sorted(
            (e for e in self.inbox if e.user_id == user_id and e.user_seq > after_seq), key=lambda e: e.user_seq
        )
        return Page(tuple(found[:limit]), has_more=len(found) > limit)

    async def max_user_seqs(self, user_ids: Iterable[str]) -> dict[str, int]:
        return {u: max((e.user_seq for e in self.inbox if e.user_id == u), default=0) for u in user_ids}


def _message(mid: str, seq: int) -> ChatMessage:
    return ChatMessage(
        message_id=mid,
        conversation_id="dm:a:b",
        seq=seq,
        sender_id="a",
        target_type="user",
        target_id="b",
        message_type="text",
        payload="x",
    )


def _entry(user: str, user_seq: int, mid: str, seq: int) -> InboxEntry:
    return InboxEntry(
        user_id=user,
        user_seq=user_seq,
        message_id=mid,
        conversation_id="dm:a:b",
        conversation_seq=seq,
        sender_id="a",
        created_at_ms=0,
    )


@pytest.mark.parametrize("broken", ["gap", "duplicate", "lost", "conversation gap"])
async def test_the_checker_catches_violations(broken: str) -> None:
    """The checker itself can fail: a skipped seq, a second inbox copy or a lost message is caught."""
    rows = Rows(
        [_message("m1", 1), _message("m2", 2)],
        [_entry("a", 1, "m1", 1), _entry("a", 2, "m2", 2), _entry("b", 1, "m1", 1), _entry("b", 2, "m2", 2)],
    )
    sent = {"m1": ("a", "b"), "m2": ("a", "b")}
    await check_invariants(rows, sent)  # type: ignore[arg-type]
    if broken == "gap":
        rows.inbox[3] = _entry("b", 3, "m2", 2)
    elif broken == "duplicate":
        rows.inbox.append(_entry("b", 3, "m2", 2))
    elif broken == "lost":
        del rows.inbox[3]  # seqs stay dense: only the count tells
    else:
        rows.messages[1] = _message("m2", 3)
    with pytest.raises(AssertionError):
        await check_invariants(rows, sent)  # type: ignore[arg-type]
