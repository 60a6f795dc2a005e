"""The store contract runs against every adapter: the embedded store always, and Cassandra:
``CHAT_CASSANDRA_CONTACT_POINTS`` when set (an external cluster), otherwise the session's real
Apache Cassandra from ``tests/real_engines.py`` (skipped with one line when this machine cannot
run it, a failure with ``CI=true``). Each Cassandra test runs in a fresh keyspace."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chat_events.settings import Settings
from chat_events.store.port import MessageStore
from tests.real_engines import Engines, drop_keyspace_sync

ADAPTERS = ["embedded", "cassandra"]


@pytest.fixture(params=ADAPTERS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MessageStore]:
    if request.param == "embedded":
        from chat_events.store.embedded import EmbeddedStore

        adapter: MessageStore = EmbeddedStore(tmp_path / "store.sqlite3")
    else:
        from chat_events.store.cassandra import CassandraStore
        from chat_events.store.cql import init_schema

        keyspace = f"chat_test_{uuid.uuid4().hex[:12]}"
        if os.environ.get("CHAT_CASSANDRA_CONTACT_POINTS"):
            settings = Settings(cassandra_keyspace=keyspace)
        else:
            engines: Engines = request.getfixturevalue("engines")
            settings = Settings(cassandra_contact_points=engines.cassandra_contact_point(), cassandra_keyspace=keyspace)
        await init_schema(settings)
        adapter = CassandraStore(settings)
    async with adapter:
        yield adapter
    if request.param == "cassandra":  # thousands of kept tables exhausted the node's heap
        await asyncio.to_thread(drop_keyspace_sync, settings)
