"""aiokafka lines that are normal at a worker's start, logged INFO instead of ERROR/WARNING.

The first consumer group to join a fresh Apache Kafka makes the broker create
``__consumer_offsets``; until its leaders are elected the group coordinator is "not available",
and aiokafka logs an ERROR ("Group Coordinator Request failed: [Error 15]
GroupCoordinatorNotAvailableError") and a WARNING ("Marking the coordinator dead") before it
retries and joins, a second later. On a newcomer's first ``chat-events up`` that reads like a
failure. While a worker waits for its first assignment these lines are demoted to INFO (shown,
under the library's name, where chat-events logs INFO); afterwards they keep their level: a
coordinator lost while running is worth a WARNING.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

COORDINATOR_LOGGER = "aiokafka.consumer.group_coordinator"
STARTUP_NOISE = (
    "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError",
    "Marking the coordinator dead",
)


class DemoteStartupNoise(logging.Filter):
    """Rewrites the records of :data:`STARTUP_NOISE` to INFO, shown where chat-events' own INFO
    lines are (the worker's start lines beside them); every other record passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.INFO or not record.getMessage().startswith(STARTUP_NOISE):
            return True
        record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return logging.getLogger("chat_events").isEnabledFor(logging.INFO)


@contextmanager
def coordinator_startup_demoted() -> Iterator[None]:
    """Demote :data:`STARTUP_NOISE` while the block runs (a worker's first join)."""
    logger = logging.getLogger(COORDINATOR_LOGGER)
    noise = DemoteStartupNoise()
    logger.addFilter(noise)
    try:
        yield
    finally:
        logger.removeFilter(noise)
