"""The transactional producers of one worker: one per assigned input partition.

On assignment (:meth:`ProducerPool.acquire`) each partition of a stage topic is paused, its
producer started (InitProducerId with the partition's stable transactional id: this fences the
previous owner and completes or aborts its last transaction), and only then is the committed
offset read afresh and the partition sought to it and resumed. Reading it earlier could return
the offset from before the previous owner's last commit was complete, and replay that commit's
records into a second set of outputs. aiokafka starts fetching committed offsets before the
rebalance listener runs; the pause keeps what it fetches from being returned, and the seek
replaces its position.

On revocation (:meth:`ProducerPool.release`) the runners have drained their partitions'
transactions first; the pool then stops the producers. A producer that cannot start for a
retriable reason (broker unavailable) is retried until it starts or the partition is revoked; a
broker that refuses transactional ids (no transactions, no authorization) fails for good, and
every runner raises that error (:meth:`ProducerPool.check`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from functools import partial

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import IllegalStateError

from chat_events.errors import TransactionsUnsupportedError
from chat_events.producers.kafka_producer import start_transactional
from chat_events.streams.stage import is_retriable
from chat_events.streams.transactional import PartitionTransactions, transactional_id

log = logging.getLogger(__name__)

MakeTransactions = Callable[[TopicPartition, AIOKafkaProducer], PartitionTransactions]


class ProducerPool:
    """``tp -> PartitionTransactions`` for the partitions of ``topics`` this worker holds."""

    def __init__(
        self,
        *,
        app_id: str,
        topics: Iterable[str],
        make_producer: Callable[[str], AIOKafkaProducer],
        make_transactions: MakeTransactions,
        start_timeout_s: float = 10.0,
        max_parallel_starts: int = 16,
    ) -> None:
        self.topics = frozenset(topics)
        self._app_id = app_id
        self._make_producer = make_producer
        self._make_transactions = make_transactions
        self._start_timeout_s = start_timeout_s
        self._starts_allowed = asyncio.Semaphore(max_parallel_starts)
        self._held: dict[TopicPartition, PartitionTransactions] = {}
        self._starting: dict[TopicPartition, asyncio.Task[None]] = {}
        self._failure: Exception | None = None

    def get(self, tp: TopicPartition) -> PartitionTransactions | None:
        """The partition's transactions once its producer is started (None before, and after)."""
        return self._held.get(tp)

    def held(self) -> list[PartitionTransactions]:
        return list(self._held.values())

    def check(self) -> None:
        """Raise the error of a producer that failed to start for good."""
        if self._failure is not None:
            raise self._failure

    async def acquire(self, consumer: AIOKafkaConsumer, assigned: Iterable[TopicPartition], wait_s: float) -> None:
        """Start the producers of ``assigned`` (those of the pool's topics), waiting at most
        ``wait_s`` for them (the rest go on in the background; their partitions stay paused)."""
        mine = {tp for tp in assigned if tp.topic in self.topics}
        if mine:  # first, before any await: nothing of them is returned until its position is re-read
            consumer.pause(*mine)
        await self.release([*self._held, *self._starting])  # anything still held is stale now
        if not mine:
            return
        for tp in mine:
            self._starting[tp] = asyncio.ensure_future(self._start(consumer, tp))
        await asyncio.wait(list(self._starting.values()), timeout=wait_s)
        if any(not task.done() for task in self._starting.values()):
            log.warning("some transactional producers are still starting; their partitions wait")

    async def release(self, tps: Iterable[TopicPartition]) -> None:
        """Stop the producers of ``tps`` (after their transactions were drained)."""
        closing = []
        for tp in set(tps):
            task = self._starting.pop(tp, None)
            if task is not None:
                task.cancel()
                closing.append(task)
            held = self._held.pop(tp, None)
            if held is not None:
                closing.append(asyncio.ensure_future(held.close()))
        if closing:
            await asyncio.gather(*closing, return_exceptions=True)

    async def close(self) -> None:
        await self.release([*self._held, *self._starting])

    async def _start(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        delay = 0.1
        while True:
            producer = self._make_producer(transactional_id(self._app_id, tp))
            try:
                async with self._starts_allowed:
                    await start_transactional(producer, self._start_timeout_s)
                committed = await consumer.committed(tp)  # read now: the previous owner's commit is complete
                if committed is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, committed)
            except asyncio.CancelledError:
                await _stop_quietly(producer)
                raise
            except Exception as exc:
                await _stop_quietly(producer)
                if not is_retriable(exc):
                    self._failure = TransactionsUnsupportedError(
                        f"Kafka refused the transactional producer of {tp.topic}[{tp.partition}] "
                        f"({type(exc).__name__}: {exc}); a broker without transactions needs "
                        "CHAT_KAFKA_TRANSACTIONS=off"
                    )
                    self._starting.pop(tp, None)
                    return
                log.warning("producer of %s[%d] did not start (%r); retrying", tp.topic, tp.partition, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            held = self._held[tp] = self._make_transactions(tp, producer)
            held.on_producer_dead = partial(self._replace, consumer, tp, held)
            self._starting.pop(tp, None)
            consumer.resume(tp)
            return

    def _replace(self, consumer: AIOKafkaConsumer, tp: TopicPartition, dead: PartitionTransactions) -> None:
        """``tp``'s producer died (``transactional.py``): pause the partition, stop the dead
        producer, and start the partition again as on assignment (a new producer with the same
        transactional id, then the committed offset re-read and sought). While it restarts the
        partition has no transactions, so the runner neither fetches nor commits it."""
        if self._held.get(tp) is not dead or tp in self._starting:
            return
        del self._held[tp]
        with contextlib.suppress(IllegalStateError):  # revoked meanwhile: release() has it
            consumer.pause(tp)

        async def again() -> None:
            await dead.close()
            await self._start(consumer, tp)

        self._starting[tp] = asyncio.ensure_future(again())


async def _stop_quietly(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(Exception):
        await producer.stop()
