"""Builds the configured store adapter (not yet opened): the one place that picks it."""

from __future__ import annotations

from chat_events.settings import Settings
from chat_events.store.port import MessageStore


def open_store(settings: Settings) -> MessageStore:
    """The store for ``settings``: Cassandra when contact points are configured (or
    ``CHAT_STORE_BACKEND=cassandra``), else the embedded SQLite file under ``CHAT_DATA_DIR``.
    Call ``await store.open()`` (or ``async with``) before use."""
    if settings.store_kind == "cassandra":
        from chat_events.store.cassandra import CassandraStore  # the driver loads only when used

        return CassandraStore(settings)
    from chat_events.store.embedded import EmbeddedStore

    return EmbeddedStore(settings.store_path, sync=settings.store_sync)
