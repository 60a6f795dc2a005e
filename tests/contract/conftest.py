"""The store contract runs against every adapter: embedded always, Cassandra when
``CHAT_CASSANDRA_CONTACT_POINTS`` is set (each run in a fresh keyspace)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chat_events.settings import Settings
from chat_events.store.port import MessageStore

ADAPTERS = ["embedded"] + (["cassandra"] if os.environ.get("CHAT_CASSANDRA_CONTACT_POINTS") else [])


@pytest.fixture(params=ADAPTERS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MessageStore]:
    if request.param == "embedded":
        from chat_events.store.embedded import EmbeddedStore

        adapter: MessageStore = EmbeddedStore(tmp_path / "store.sqlite3")
    else:
        from chat_events.store.cassandra import CassandraStore
        from chat_events.store.cql import init_schema

        settings = Settings(cassandra_keyspace=f"chat_test_{uuid.uuid4().hex[:12]}")
        await init_schema(settings)
        adapter = CassandraStore(settings)
    async with adapter:
        yield adapter
