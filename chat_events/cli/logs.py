"""Log configuration of the long-running commands (``worker``, ``edge``, and so ``up``'s children).

chat-events' own loggers log at the configured level, INFO by default: start and stop lines
("edge ... ready", "worker ... consuming", an edge that stopped cleanly) are INFO, what needs an
operator's attention (a silent edge with sessions, lagging workers, failed sends) WARNING.
Libraries (aiokafka, uvicorn, the Cassandra driver) are chatty at INFO: they log WARNING and
above whatever the level, unless the level asked for is higher still.
"""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def library_level(level: str) -> int:
    """The level of every logger outside chat-events: WARNING, or ``level`` if it is higher (pure)."""
    asked: int = logging.getLevelNamesMapping()[level.upper()]
    return max(logging.WARNING, asked)


def configure_logging(level: str) -> None:
    """Log lines to stderr: chat-events' own at ``level``, libraries' per :func:`library_level`."""
    logging.basicConfig(level=library_level(level), format=FORMAT)
    logging.getLogger("chat_events").setLevel(level.upper())
