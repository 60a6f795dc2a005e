"""The product's consumers: no fetch hold-back (:class:`ChatConsumer`), and on the embedded
broker a stop to fetching while nothing flows (:class:`PacedConsumer`).

The embedded broker answers a fetch only when its wait is over, even when data arrives meanwhile,
so consumers poll it with a short wait (``CHAT_KAFKA_FETCH_MAX_WAIT_MS``, 10 ms: the per-hop
latency) — ~100 fetches a second per consumer, a third of a core for the broker with nobody
talking. A :class:`PacedConsumer` keeps that short wait while records flow; after
``CHAT_KAFKA_IDLE_PAUSE_MS`` with no record and no wake-up it pauses its partitions (no fetches
at all), and resumes them at once when a local producer rings its doorbell
(:mod:`chat_events.kafka.doorbell`), or for a short probe every ``CHAT_KAFKA_IDLE_PROBE_MS`` (for
producers that do not ring: other clients, a lost datagram). Under load nothing changes; the
first message after a pause costs one datagram more.

Only partitions this pacer paused are resumed by it; partitions a rebalance took away are
forgotten, new ones start fetching and are paused at the next idle step. Real Kafka answers a
fetch as soon as data arrives, so there consumers just wait longer per fetch and are not paced.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from chat_events.kafka.connection import KafkaTarget, fetch_wait_ms
from chat_events.kafka.doorbell import RESCAN_S, Doorbell, registry_dir
from chat_events.settings import Settings


class Mode(enum.Enum):
    FETCHING = "fetching"
    PAUSED = "paused"
    PROBING = "probing"


@dataclass(frozen=True, slots=True)
class PacingPolicy:
    idle_after_s: float
    """No record and no ring for this long: stop fetching."""
    probe_every_s: float
    """While paused, fetch again this often ..."""
    probe_for_s: float
    """... for this long (a fetch round or two), then pause again unless records came."""


def next_mode(
    mode: Mode, now: float, last_activity: float, mode_since: float, policy: PacingPolicy
) -> tuple[Mode, float]:
    """The mode at ``now`` with no activity since ``last_activity``, and when to look again.
    Activity itself (a record, a ring) always means :attr:`Mode.FETCHING` at once."""
    if mode is Mode.FETCHING:
        due = last_activity + policy.idle_after_s
        return (Mode.PAUSED, now + policy.probe_every_s) if now >= due else (Mode.FETCHING, due)
    if mode is Mode.PAUSED:
        due = mode_since + policy.probe_every_s
        return (Mode.PROBING, now + policy.probe_for_s) if now >= due else (Mode.PAUSED, due)
    due = mode_since + policy.probe_for_s
    return (Mode.PAUSED, now + policy.probe_every_s) if now >= due else (Mode.PROBING, due)


class IdlePacer:
    """Pauses and resumes one consumer's partitions as :func:`next_mode` says. :meth:`activity`
    is O(1) (called per ``getmany`` with records and per ring); one timer re-arms itself."""

    def __init__(
        self, consumer: AIOKafkaConsumer, policy: PacingPolicy, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._consumer = consumer
        self._policy = policy
        self._clock = clock
        now = clock()
        self.mode = Mode.FETCHING
        self._last_activity = now
        self._mode_since = now
        self._paused: set[TopicPartition] = set()
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._arm(self._last_activity + self._policy.idle_after_s)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._resume()

    def activity(self) -> None:
        self._last_activity = self._clock()
        if self.mode is not Mode.FETCHING:
            self._enter(Mode.FETCHING)
            self._arm(self._last_activity + self._policy.idle_after_s)

    def _arm(self, due: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(0.0, due - self._clock()), self._step)

    def _step(self) -> None:
        self._timer = None
        mode, due = next_mode(self.mode, self._clock(), self._last_activity, self._mode_since, self._policy)
        if mode is not self.mode:
            self._enter(mode)
        self._arm(due)

    def _enter(self, mode: Mode) -> None:
        self.mode = mode
        self._mode_since = self._clock()
        if mode is Mode.PAUSED:
            self._pause()
        else:
            self._resume()

    def _pause(self) -> None:
        consumer = self._consumer
        mine = consumer.assignment() - consumer.paused()
        if mine:
            consumer.pause(*mine)
            self._paused |= mine

    def _resume(self) -> None:
        mine = self._paused & self._consumer.assignment()  # a rebalance may have taken some away
        self._paused.clear()
        if mine:
            self._consumer.resume(*mine)


PREFETCH_BACKOFF_S = 0.0
"""How long aiokafka's fetcher holds back *every* fetch to a broker after records of one partition
were fetched and not yet taken (its default: 0.1 s), on the embedded broker. One consumer serves
all of a worker's stages, so a stage still busy with its last batch held up the fetches of every
other stage: ~50-100 ms per hop under load. With 0 a partition with records waiting is left out
of the next fetch and the others are fetched at once; the embedded broker answers every fetch
within its 10 ms wait, so the partition left out is fetched again ~10 ms later."""
KAFKA_PREFETCH_BACKOFF_S = 0.1
"""The same on Kafka: aiokafka's default. Kafka holds a fetch with nothing to answer for its whole
wait (500 ms), so a partition left out of the fetch in flight would wait that long once its
records are taken: with 0 the default stack's W1 p50 at 200 msg/s went from 217 to 666 ms, and
with 0 and a 100 ms wait it was 189 ms for twice the idle cost (bench_edge --stack kafka)."""


class ChatConsumer(AIOKafkaConsumer):  # type: ignore[misc]  # aiokafka is untyped
    """An :class:`AIOKafkaConsumer` with the fetcher's prefetch backoff of its broker
    (:data:`PREFETCH_BACKOFF_S`, :data:`KAFKA_PREFETCH_BACKOFF_S`)."""

    def __init__(self, *, prefetch_backoff_s: float = KAFKA_PREFETCH_BACKOFF_S, **options: Any) -> None:
        super().__init__(**options)
        self._prefetch_backoff_s = prefetch_backoff_s

    async def start(self) -> None:
        await super().start()
        self._fetcher._prefetch_backoff = self._prefetch_backoff_s  # created by start(); no option for it


class PacedConsumer(ChatConsumer):
    """A :class:`ChatConsumer` with an :class:`IdlePacer` and a doorbell: ``getmany`` results with
    records and rings count as activity. Everything else is aiokafka's."""

    def __init__(self, *, policy: PacingPolicy, doorbells: Path, wake_on: Iterable[str] = (), **options: Any) -> None:
        super().__init__(prefetch_backoff_s=PREFETCH_BACKOFF_S, **options)
        self.pacer = IdlePacer(self, policy)
        self._doorbell = Doorbell(doorbells, self.pacer.activity, wake_on)

    async def start(self) -> None:
        await super().start()
        await self._doorbell.open()
        self.pacer.start()

    async def stop(self) -> None:
        self.pacer.stop()
        self._doorbell.close()
        await super().stop()

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None) -> Any:
        batches = await super().getmany(*partitions, timeout_ms=timeout_ms, max_records=max_records)
        if batches:
            self.pacer.activity()
        return batches


def note_progress(consumer: AIOKafkaConsumer) -> None:
    """A stage finished handling records it took from ``consumer``: that is activity too.

    Without it, a stage busy with one batch for longer than the idle delay (a group message's
    100 inbox rows, say) while no other ``getmany`` returned records let the pacer pause every
    partition, the records fetched for that stage meanwhile included, and its next ``getmany``
    waited for the 2 s probe: ``bench_worker``'s pre-published group run took 27 s instead of 7."""
    if isinstance(consumer, PacedConsumer):
        consumer.pacer.activity()


def pacing_policy(settings: Settings, target: KafkaTarget) -> PacingPolicy | None:
    """The pacing of ``target``'s consumers: None (always fetch) on real Kafka or with
    ``CHAT_KAFKA_IDLE_PAUSE_MS=0``."""
    if not target.embedded or settings.kafka_idle_pause_ms <= 0:
        return None
    probe_for_ms = max(3 * fetch_wait_ms(settings, target), 20)
    return PacingPolicy(
        idle_after_s=max(settings.kafka_idle_pause_ms / 1000, RESCAN_S),  # see the doorbell's docstring
        probe_every_s=settings.kafka_idle_probe_ms / 1000,
        probe_for_s=probe_for_ms / 1000,
    )


def build_consumer(
    settings: Settings, target: KafkaTarget, *, wake_on: Iterable[str] = (), **options: Any
) -> AIOKafkaConsumer:
    """A consumer of ``target``: a :class:`PacedConsumer` on the embedded broker (woken by sends
    to the topics ``wake_on``; empty: to any topic), else a :class:`ChatConsumer`. ``options`` are
    :func:`~chat_events.kafka.connection.consumer_options` and the rest."""
    policy = pacing_policy(settings, target)
    if policy is None:
        backoff_s = PREFETCH_BACKOFF_S if target.embedded else KAFKA_PREFETCH_BACKOFF_S
        return ChatConsumer(prefetch_backoff_s=backoff_s, **options)
    return PacedConsumer(policy=policy, doorbells=registry_dir(target.bootstrap_servers), wake_on=wake_on, **options)
