"""Faults: a worker killed with SIGKILL mid-run, and a broker that lost all its data.

One checker holds the invariants after each: nothing lost, nothing stored or delivered twice,
no seq reused or skipped.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import uuid
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import pytest

from chat_events.codec import build_codec
from chat_events.events.conversations import conversation_id_of
from chat_events.events.factory import new_envelope
from chat_events.events.types import PersonalChatSent
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.kafka.embedded import EmbeddedBroker
from chat_events.producers.publisher import EventPublisher
from chat_events.settings import Settings
from tests.conftest import make_settings
from tests.integration.worker_harness import WorkerProcess, wait_until


def check_invariants(db_path: Path, sent: dict[str, tuple[str, str]]) -> None:
    """``sent``: message id -> (sender, recipient) of every message ACKed by the broker."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        messages = db.execute("SELECT message_id, conversation_id, seq FROM messages").fetchall()
        assert len(messages) == len({m for m, _, _ in messages}) == len(sent)  # each stored once, none lost
        assert {m for m, _, _ in messages} == set(sent)
        per_conversation: dict[str, list[int]] = defaultdict(list)
        for _, conversation, seq in messages:
            per_conversation[conversation].append(seq)
        for seqs in per_conversation.values():  # conversation seqs: dense, none reused
            assert sorted(seqs) == list(range(1, len(seqs) + 1))
        conversation_seq = {m: seq for m, _, seq in messages}

        inbox = db.execute(
            "SELECT user_id, user_seq, message_id, conversation_id, conversation_seq FROM inbox "
            "ORDER BY user_id, user_seq"
        ).fetchall()
        expected = {(user, mid) for mid, pair in sent.items() for user in pair}
        assert len(inbox) == len(expected)  # one entry per (recipient, message): none twice, none lost
        assert {(user, mid) for user, _, mid, _, _ in inbox} == expected
        by_user: dict[str, list[tuple[int, str, str, int]]] = defaultdict(list)
        for user, user_seq, mid, conversation, cseq in inbox:
            assert cseq == conversation_seq[mid]
            by_user[user].append((user_seq, mid, conversation, cseq))
        for rows in by_user.values():
            assert [r[0] for r in rows] == list(range(1, len(rows) + 1))  # user seqs dense from 1
            last: dict[str, int] = {}
            for _, _, conversation, cseq in rows:  # per conversation, inbox order = conversation order
                assert cseq > last.get(conversation, 0)
                last[conversation] = cseq
    finally:
        db.close()


def stored_count(db_path: Path, table: str) -> int:
    if not db_path.exists():
        return 0
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


async def send_pairs(
    publisher: EventPublisher, n: int, users: list[str], chunk: int = 250
) -> dict[str, tuple[str, str]]:
    """``n`` 1:1 messages among ``users`` in pairs, published in chunks; returns what was ACKed."""
    sent: dict[str, tuple[str, str]] = {}
    for start in range(0, n, chunk):
        envelopes = []
        for i in range(start, min(n, start + chunk)):
            a, b = users[(2 * i) % len(users)], users[(2 * i + 1) % len(users)]
            sender, target = (a, b) if i % 3 else (b, a)
            event = PersonalChatSent(
                message_id=str(uuid.uuid4()), sender_id=sender, target_id=target, payload=f"m{i}", target_type="user"
            )
            envelopes.append(new_envelope(replace(event, conversation_id=conversation_id_of(event)), user_id=sender))
        await publisher.publish_many(envelopes)
        for envelope in envelopes:
            event = envelope.payload
            assert isinstance(event, PersonalChatSent)
            sent[event.message_id] = (event.sender_id, event.target_id)
        await asyncio.sleep(0)
    return sent


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM", "SIGINT"])
async def test_worker_stopped_mid_run_loses_and_duplicates_nothing(
    kafka_target: KafkaTarget, tmp_path: Path, how: str
) -> None:
    """Killed hard, or asked to stop (which must end the process on its own, exit code 0)."""
    settings = make_settings(
        kafka_target,
        tmp_path,
        worker_app_id=f"w-{uuid.uuid4().hex[:8]}",
        worker_session_timeout_s=6.0,
        worker_rebalance_timeout_s=3.0,
    )
    await ensure_topics(settings, kafka_target)
    users = [f"u{i}-{uuid.uuid4().hex[:4]}" for i in range(40)]
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    worker.start()
    try:
        async with EventPublisher(settings, kafka_target, build_codec(settings)) as publisher:
            sending = asyncio.ensure_future(send_pairs(publisher, 5000, users))
            await wait_until(
                lambda: _at_least(settings.store_path, "inbox", 2000), timeout=120, what="a third of the run"
            )
            if how == "kill -9":
                worker.kill9()
            else:
                assert worker.terminate(sig=signal.Signals[how]) == 0
            killed_at = stored_count(settings.store_path, "inbox")
            sent = await sending
            assert killed_at < 10_000, "the kill must land mid-run"
            worker.start()
            await wait_until(
                lambda: _at_least(settings.store_path, "inbox", 10_000),
                timeout=180,
                what="every inbox entry after the restart",
            )
            await asyncio.sleep(1.0)  # anything replayed late would show up as a duplicate now
    finally:
        worker.stop()
    check_invariants(settings.store_path, sent)


async def _at_least(path: Path, table: str, n: int) -> bool:
    return stored_count(path, table) >= n


async def test_broker_data_lost_seqs_continue_from_the_store(tmp_path: Path) -> None:
    broker = EmbeddedBroker(0)
    broker.start()
    port = int(broker.bootstrap_servers.rsplit(":", 1)[1])
    target = KafkaTarget(broker.bootstrap_servers, embedded=True)
    settings: Settings = make_settings(target, tmp_path, worker_app_id="w-lost")
    users = [f"v{i}" for i in range(10)]
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        await ensure_topics(settings, target)
        worker.start()
        async with EventPublisher(settings, target, build_codec(settings)) as publisher:
            sent = await send_pairs(publisher, 200, users)
        await wait_until(lambda: _at_least(settings.store_path, "inbox", 400), timeout=60, what="first half")
        worker.stop()
        broker.stop()  # the embedded broker keeps topics in memory: everything is gone
        broker = EmbeddedBroker(port)
        broker.start()
        await ensure_topics(settings, target)
        worker.start()
        async with EventPublisher(settings, target, build_codec(settings)) as publisher:
            sent.update(await send_pairs(publisher, 200, users))
        await wait_until(lambda: _at_least(settings.store_path, "inbox", 800), timeout=60, what="second half")
        await asyncio.sleep(0.5)
    finally:
        worker.stop()
        broker.stop()
    check_invariants(settings.store_path, sent)


@pytest.mark.parametrize("broken", ["gap", "duplicate"])
def test_the_checker_catches_violations(tmp_path: Path, broken: str) -> None:
    """The checker itself can fail: a skipped seq or a second inbox copy is caught."""
    path = tmp_path / "store.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE messages (message_id, conversation_id, seq);"
        "CREATE TABLE inbox (user_id, user_seq, message_id, conversation_id, conversation_seq);"
        "INSERT INTO messages VALUES ('m1', 'dm:a:b', 1), ('m2', 'dm:a:b', 2);"
        "INSERT INTO inbox VALUES ('a', 1, 'm1', 'dm:a:b', 1), ('a', 2, 'm2', 'dm:a:b', 2),"
        "('b', 1, 'm1', 'dm:a:b', 1), ('b', 2, 'm2', 'dm:a:b', 2);"
    )
    check_invariants(path, {"m1": ("a", "b"), "m2": ("a", "b")})
    if broken == "gap":
        db.execute("UPDATE inbox SET user_seq = 3 WHERE user_id = 'b' AND message_id = 'm2'")
    else:
        db.execute("INSERT INTO inbox VALUES ('b', 3, 'm2', 'dm:a:b', 2)")
    db.commit()
    db.close()
    with pytest.raises(AssertionError):
        check_invariants(path, {"m1": ("a", "b"), "m2": ("a", "b")})
