"""Faust's aiokafka transport with the consumer long-poll we configure.

faust-streaming hard-codes ``fetch_max_wait_ms=1500`` on its worker consumer. Brokers that do
not answer a fetch early when data arrives (the embedded one) turn that into 1.5 s per hop, so
the worker's consumers take ``CHAT_KAFKA_FETCH_MAX_WAIT_MS`` instead, like every other consumer
of chat-events. This module is the only place that reaches into Faust's internals.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka keeps the constructor value and hands it to its Fetcher in start().
        consumer._fetch_max_wait_ms = getattr(self.app, "fetch_max_wait_ms", consumer._fetch_max_wait_ms)
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class ChatFaustApp(faust.App):
    """A Faust app whose worker consumers use ``fetch_max_wait_ms``."""

    fetch_max_wait_ms: int = 10
    chat_stages: Any = None
    """The stages the agents run (tests and benchmarks look inside)."""
    chat_assigned: asyncio.Event
    """Set once the worker holds its first partition assignment."""

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)
