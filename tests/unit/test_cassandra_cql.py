"""The Cassandra adapter without a server: the schema file, every statement of the adapter
checked against it, buckets, error mapping, and the ResponseFuture -> asyncio bridge."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cassandra import (
    InvalidRequest,
    OperationTimedOut,
    ReadTimeout,
    Unavailable,
    UnresolvableContactPoints,
    WriteTimeout,
)
from cassandra.cluster import NoHostAvailable
from pydantic import SecretStr

from chat_events.errors import ConfigurationError, StoreUnavailableError
from chat_events.events.types import ChatMessage
from chat_events.settings import Settings
from chat_events.store import cassandra_rows, cql
from chat_events.store.cassandra import BUCKET_SIZE, CassandraStore, bucket
from chat_events.store.cassandra_async import Requests, map_error, result_of
from chat_events.store.cassandra_changes import CHANGES_STATEMENTS
from chat_events.store.cassandra_driver import build_cluster
from chat_events.store.cassandra_groups import GROUP_STATEMENTS
from chat_events.store.cassandra_plan import buckets_down, buckets_up
from chat_events.store.cassandra_presence import PRESENCE_STATEMENTS
from chat_events.store.cassandra_settings import SETTINGS_STATEMENTS
from chat_events.store.cassandra_sync import SYNC_STATEMENTS
from chat_events.store.factory import open_store
from chat_events.store.models import InboxEntry
from tests.unit.fake_cql import Statement, check_type, parse

DESIGN_TABLES = {
    "messages",
    "messages_by_id",
    "messages_by_client_id",
    "conversation_seqs",
    "inbox",
    "inbox_by_message",
    "user_seqs",
    "conversations_by_user",
    "groups",
    "group_members",
    "blocks",
    "blocks_by_blocked",
    "sessions_by_user",
    "sessions_by_edge",
    "rate_limited",
    "device_tokens",
    "calls",
}
ADAPTER_SOURCES = [*sorted(Path(cql.__file__).parent.glob("cassandra*.py")), Path(cql.__file__)]


# --- the schema file ---------------------------------------------------------------------


def test_the_cql_file_splits_into_create_statements() -> None:
    statements = cql.load_statements()
    assert len(statements) == len(cql.tables())
    for statement in statements:
        assert statement.startswith("CREATE TABLE IF NOT EXISTS "), statement
        assert "--" not in statement and "\n" not in statement


def test_splitting_keeps_quoted_text_and_drops_comments() -> None:
    text = "-- a comment; with a semicolon\nCREATE X (a text) WITH comment = 'a; b -- c';\n/* x; */ SELECT 1 // y;\n;"
    assert cql.split_statements(text) == ["CREATE X (a text) WITH comment = 'a; b -- c'", "SELECT 1"]


def test_every_table_of_the_design_exists_with_its_keys() -> None:
    schema = cql.tables()
    assert set(schema) >= DESIGN_TABLES
    keys = {name: (t.partition_key, t.clustering) for name, t in schema.items()}
    assert keys["messages"] == (("conversation_id", "bucket"), ("seq",))
    assert schema["messages"].order == {"seq": "DESC"}
    assert keys["inbox"] == (("user_id", "bucket"), ("user_seq",))
    assert schema["inbox"].order == {"user_seq": "ASC"}
    assert keys["messages_by_id"] == (("message_id",), ())
    assert keys["messages_by_client_id"] == (("sender_id", "client_msg_id"), ())
    assert keys["inbox_by_message"] == (("user_id", "message_id"), ())
    assert keys["conversations_by_user"] == (("user_id",), ("conversation_id",))
    assert keys["group_members"] == (("group_id",), ("user_id",))
    assert keys["blocks"] == (("blocker_id",), ("blocked_id",))
    assert keys["blocks_by_blocked"] == (("blocked_id",), ("blocker_id",))
    assert keys["sessions_by_user"] == (("user_id",), ("session_id",))
    assert keys["sessions_by_edge"] == (("edge_id",), ("user_id", "session_id"))
    assert keys["rate_limited"] == (("user_id",), ("window_start_ms", "event_id"))
    for name in ("group_members", "blocks", "blocks_by_blocked", "sessions_by_user", "sessions_by_edge"):
        assert schema[name].columns["active"] == "boolean", name


def test_messages_has_a_column_for_every_chat_message_field() -> None:
    columns = cql.tables()["messages"].columns
    for f in dataclasses.fields(ChatMessage):
        assert f.name in columns, f.name
    assert columns["mentions"] == "frozen<list<text>>"
    assert all(columns[c] == "bigint" for c in ("seq", "bucket", "sent_at_ms", "stored_at_ms"))


def test_nothing_deletes() -> None:
    assert not any(re.search(r"\bDELETE\b", s, re.IGNORECASE) for s in cql.load_statements())
    assert not any(re.search(r"\bDELETE\b", s, re.IGNORECASE) for s in cassandra_rows.STATEMENTS.values())
    for source in ADAPTER_SOURCES:
        assert not re.search(r"DELETE\s+FROM|\bTRUNCATE\b|\bDROP\b", source.read_text(), re.IGNORECASE), source


def test_keyspace_statement_uses_the_replication_setting() -> None:
    settings = Settings(cassandra_keyspace="chat_x", cassandra_replication="{'class': 'NetworkTopologyStrategy'}")
    assert cql.keyspace_statement(settings) == (
        "CREATE KEYSPACE IF NOT EXISTS chat_x WITH replication = {'class': 'NetworkTopologyStrategy'}"
    )
    with pytest.raises(ConfigurationError):
        cql.keyspace_statement(Settings(cassandra_replication="SimpleStrategy"))


# --- the adapter's statements against the schema -----------------------------------------


@pytest.mark.parametrize("name", sorted(cassandra_rows.STATEMENTS))
def test_statement_uses_only_declared_columns_and_keys(name: str) -> None:
    stmt = parse(cassandra_rows.STATEMENTS[name])
    table = cql.tables()[stmt.table]
    referenced = set(stmt.columns) | {c for c, _ in stmt.where}
    assert referenced <= set(table.columns), referenced - set(table.columns)
    where = dict(stmt.where)
    if stmt.kind == "INSERT":
        assert set(table.primary_key) <= set(stmt.columns)  # an upsert names its whole key
        assert stmt.markers == len(stmt.columns) + stmt.ttl
    elif stmt.kind == "UPDATE":
        assert where == dict.fromkeys(table.primary_key, "=")  # one row, by its whole key
        assert not set(stmt.columns) & set(table.primary_key)
    else:
        _check_select(stmt, table.partition_key, table.clustering)
    assert not (stmt.ttl and stmt.table not in ("sessions_by_user", "sessions_by_edge", "session_edges"))


def _check_select(stmt: Statement, partition: tuple[str, ...], clustering: tuple[str, ...]) -> None:
    where = dict(stmt.where)
    # a read names its partitions, no scans: every partition key column bound by "=" or by
    # "IN ?" (CqlSession.lookup / lookup_pairs: a bounded list of partitions per request)
    assert all(where.get(c) in ("=", "IN") for c in partition), "a read names its partition: no scans"
    regular = [c for c in where if c not in partition and c not in clustering]
    assert not regular or stmt.allow_filtering  # filtering stays inside the one partition
    restricted = [c for c in clustering if c in where]
    assert restricted == list(clustering[: len(restricted)]), "clustering restrictions are a prefix"
    assert all(where[c] == "=" for c in restricted[:-1])
    if stmt.order_by is not None:
        assert stmt.order_by[0] == clustering[0]


def test_every_table_but_the_reserved_ones_is_used() -> None:
    statements = [*cassandra_rows.STATEMENTS.values(), *SYNC_STATEMENTS.values(), *SETTINGS_STATEMENTS.values()]
    statements += CHANGES_STATEMENTS.values()
    statements += GROUP_STATEMENTS.values()
    statements += PRESENCE_STATEMENTS.values()
    used = {parse(text).table for text in statements}
    assert set(cql.tables()) - used == {"device_tokens", "calls"}


def test_row_values_bind_without_nulls_and_map_back() -> None:
    message = ChatMessage(
        message_id="m1",
        conversation_id="c",
        seq=1234,
        sender_id="a",
        target_type="user",
        target_id="b",
        message_type="text",
        payload="hi",
    )
    columns = [c.strip() for c in cassandra_rows.MESSAGE_ROW_COLS.split(",")]
    types = cql.tables()["messages"].columns
    for origin in (None, "7d3c7e0a-5b1e-4f5e-9a53-8c1b0e6f2a11"):
        values = cassandra_rows.message_values(message, origin)
        assert all(check_type(types[c], v) for c, v in zip(columns, values, strict=True))
        row = dict(zip(columns, values, strict=True))
        assert row["bucket"] == 1
        assert cassandra_rows.message_from_row(row) == message
        assert cassandra_rows.origin_from_row(row) == origin  # none recorded: "" (no null), read as None
    assert cassandra_rows.origin_from_row({"origin_envelope_id": None}) is None  # a row older than the column
    change = dataclasses.replace(
        message, kind="edit", relates_to="m0", reply_to="m0", edited_at_ms=7, changed_seq=1235, mentions=("b",)
    )
    values = cassandra_rows.message_values(change)
    assert all(check_type(types[c], v) for c, v in zip(columns, values, strict=True))
    assert cassandra_rows.message_from_row(dict(zip(columns, values, strict=True))) == change
    old_row = dict(zip(columns, cassandra_rows.message_values(message), strict=True))
    old_row.update(kind=None, relates_to=None, reply_to=None, edited_at_ms=None, changed_seq=None)
    assert cassandra_rows.message_from_row(old_row) == message  # a row older than the v7 columns
    entry = InboxEntry(
        user_id="b",
        user_seq=1,
        message_id="m1",
        conversation_id="c",
        conversation_seq=1,
        sender_id="a",
        created_at_ms=1,
    )
    inbox_rows = []
    for name, values in cassandra_rows.inbox_writes(entry):  # the three tables of an entry
        stmt = parse(cassandra_rows.STATEMENTS[name])
        inbox_rows.append(dict(zip(stmt.columns, values, strict=True)))
        assert inbox_rows[-1]["counted"] is True and check_type(cql.tables()[stmt.table].columns["counted"], True)
    assert cassandra_rows.inbox_from_row(inbox_rows[0]) == entry
    assert cassandra_rows.inbox_from_row({**inbox_rows[0], "counted": None}).counted  # older than the column
    assert not cassandra_rows.inbox_from_row({**inbox_rows[0], "counted": False}).counted


def test_added_columns_are_in_the_schema_file_and_added_by_alter() -> None:
    schema = cql.tables()
    for table, column, kind in cql.ADDED_COLUMNS:
        assert schema[table].columns[column] == kind, (table, column)
    assert cql.add_column_statements() == [
        "ALTER TABLE messages ADD origin_envelope_id text",
        "ALTER TABLE conversations_by_user ADD hidden boolean",
        "ALTER TABLE conversations_by_user ADD version bigint",
        "ALTER TABLE conversations_by_user ADD unread_mentions bigint",
        "ALTER TABLE inbox ADD mentioned boolean",
        "ALTER TABLE inbox_by_message ADD mentioned boolean",
        "ALTER TABLE inbox_by_conversation ADD mentioned boolean",
        "ALTER TABLE messages ADD kind text",
        "ALTER TABLE messages ADD relates_to text",
        "ALTER TABLE messages ADD reply_to text",
        "ALTER TABLE messages ADD edited_at_ms bigint",
        "ALTER TABLE messages ADD changed_seq bigint",
        "ALTER TABLE inbox ADD counted boolean",
        "ALTER TABLE inbox_by_message ADD counted boolean",
        "ALTER TABLE inbox_by_conversation ADD counted boolean",
    ]
    assert cql.column_exists_error(InvalidRequest("Column with name 'origin_envelope_id' already exists"))
    assert cql.column_exists_error(InvalidRequest("Invalid column name x because it conflicts with an existing column"))
    assert not cql.column_exists_error(InvalidRequest("unconfigured table messages"))


# --- buckets -----------------------------------------------------------------------------


def test_buckets() -> None:
    assert BUCKET_SIZE == 1000
    assert [bucket(s) for s in (0, 1, 999, 1000, 1999, 2000, 2501)] == [0, 0, 0, 1, 1, 2, 2]
    assert list(buckets_up(996, 2501)) == [0, 1, 2]
    assert list(buckets_up(1000, 1000)) == [1]
    assert list(buckets_up(5, 3)) == []
    assert list(buckets_down(2002)) == [2, 1, 0]
    assert list(buckets_down(0)) == [0]
    assert list(buckets_down(-1)) == []


# --- errors and the cluster --------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        NoHostAvailable("no host", {}),
        OperationTimedOut("slow"),
        Unavailable("down"),
        ReadTimeout("read"),
        WriteTimeout("write", write_type=0),
        UnresolvableContactPoints({}),
    ],
)
def test_driver_outages_are_retriable_store_errors(exc: Exception) -> None:
    mapped = map_error(exc)
    assert isinstance(mapped, StoreUnavailableError) and mapped.retriable


def test_other_driver_errors() -> None:
    assert isinstance(map_error(InvalidRequest("unconfigured table messages")), ConfigurationError)
    assert map_error(KeyError("bug")) is None


def test_cluster_from_settings() -> None:
    settings = Settings(
        cassandra_contact_points=" 10.0.0.1, 10.0.0.2 ",
        cassandra_port=9043,
        cassandra_username="chat",
        cassandra_password=SecretStr("secret"),
        cassandra_consistency="QUORUM",
        cassandra_local_dc="dc1",
        cassandra_request_timeout_s=3.5,
    )
    cluster = build_cluster(settings)
    profile = cluster.profile_manager.default
    assert cluster.contact_points == [("10.0.0.1", 9043), ("10.0.0.2", 9043)] and cluster.port == 9043
    assert cluster.auth_provider.username == "chat" and cluster.auth_provider.password == "secret"
    assert profile.consistency_level == 4 and profile.request_timeout == 3.5  # QUORUM
    assert type(profile.load_balancing_policy).__name__ == "TokenAwarePolicy"
    assert profile.load_balancing_policy._child_policy.local_dc == "dc1"
    assert build_cluster(Settings(cassandra_contact_points="127.0.0.1")).auth_provider is None
    with pytest.raises(ConfigurationError):
        build_cluster(Settings())


def test_the_factory_builds_this_adapter_without_connecting() -> None:
    assert isinstance(open_store(Settings(cassandra_contact_points="127.0.0.1")), CassandraStore)


async def test_an_unreachable_cluster_is_a_retriable_error() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = CassandraStore(Settings(cassandra_contact_points="127.0.0.1", cassandra_port=port))
    with pytest.raises(StoreUnavailableError):
        await store.get_message("m")  # not open
    with pytest.raises(StoreUnavailableError):
        await store.open()


# --- the asyncio bridge ------------------------------------------------------------------


class Future:
    """The part of ``ResponseFuture`` the bridge uses; completes from another thread."""

    def __init__(self, pages: list[list[dict[str, Any]]] | BaseException, delay: float = 0.0, sync: bool = False):
        self.pages, self.delay, self.sync, self.fetched = pages, delay, sync, 0
        self.callbacks: tuple[Callable[[Any], None], Callable[[BaseException], None]] | None = None

    def add_callbacks(self, callback: Callable[[Any], None], errback: Callable[[BaseException], None]) -> None:
        self.callbacks = (callback, errback)
        self._deliver() if self.sync else self._later()

    @property
    def has_more_pages(self) -> bool:
        return isinstance(self.pages, list) and self.fetched < len(self.pages)

    def start_fetching_next_page(self) -> None:
        self._later()

    def _later(self) -> None:
        threading.Thread(target=self._deliver, daemon=True).start()

    def _deliver(self) -> None:
        time.sleep(self.delay)
        assert self.callbacks is not None
        if isinstance(self.pages, BaseException):
            self.callbacks[1](self.pages)
            return
        page = self.pages[self.fetched] if self.pages else None
        self.fetched += 1
        self.callbacks[0](page)


async def test_bridge_returns_every_page() -> None:
    pages = [[{"n": 1}, {"n": 2}], [{"n": 3}], [{"n": 4}]]
    assert await result_of(Future(pages)) == [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}]
    assert await result_of(Future([])) == []  # a write: the driver passes None
    assert await result_of(Future([[{"n": 1}]], sync=True)) == [{"n": 1}]  # already done


async def test_bridge_does_not_block_the_loop() -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    ticker = asyncio.create_task(tick())
    assert await result_of(Future([[{"n": 1}]], delay=0.2)) == [{"n": 1}]
    ticker.cancel()
    assert ticks >= 10


async def test_bridge_maps_errors() -> None:
    with pytest.raises(StoreUnavailableError) as caught:
        await result_of(Future(ReadTimeout("replicas slow")))
    assert isinstance(caught.value.__cause__, ReadTimeout)
    with pytest.raises(ConfigurationError):
        await result_of(Future(InvalidRequest("unconfigured table")))
    with pytest.raises(KeyError):
        await result_of(Future(KeyError("a bug stays a bug")))


async def test_bridge_survives_a_cancelled_waiter() -> None:
    future = Future([[{"n": 1}]], delay=0.1)
    waiter = asyncio.create_task(result_of(future))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.sleep(0.2)  # the late result lands on a cancelled future: ignored, no error


class Session:
    """``execute_async`` of a driver session: each request answers with its own ``Future``."""

    def __init__(self, answers: dict[str, list[list[dict[str, Any]]] | BaseException]) -> None:
        self.answers = answers
        self.in_flight = 0
        self.most_in_flight = 0
        self.started: list[str] = []
        self._lock = threading.Lock()

    def execute_async(self, statement: str, values: Any) -> Future:
        with self._lock:
            self.started.append(statement)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        session = self

        class Tracked(Future):
            def _deliver(self) -> None:
                if (
                    not self.has_more_pages
                    or isinstance(self.pages, BaseException)
                    or self.fetched == len(self.pages) - 1
                ):
                    with session._lock:
                        session.in_flight -= 1
                super()._deliver()

        return Tracked(self.answers[statement], delay=0.01)


async def test_requests_return_every_page_in_request_order_within_the_limit() -> None:
    answers: dict[str, Any] = {f"q{i}": [[{"n": i}], [{"n": i + 100}]] for i in range(12)}
    answers["write"] = []
    session = Session(answers)
    requests = [(f"q{i}", None) for i in range(12)] + [("write", None)]
    found = await Requests(session, requests, limit=3).run()
    assert found == [[{"n": i}, {"n": i + 100}] for i in range(12)] + [[]]
    assert session.most_in_flight <= 3
    assert await Requests(session, [], limit=3).run() == []


async def test_requests_run_to_their_end_before_the_first_error_is_raised_mapped() -> None:
    answers: dict[str, Any] = {f"q{i}": [[{"n": i}]] for i in range(6)}
    answers["slow-failure"] = ReadTimeout("replicas slow")
    session = Session(answers)
    requests = [("slow-failure", None)] + [(f"q{i}", None) for i in range(6)]
    with pytest.raises(StoreUnavailableError) as caught:
        await Requests(session, requests, limit=2).run()
    assert isinstance(caught.value.__cause__, ReadTimeout)
    assert len(session.started) == 7 and session.in_flight == 0  # every request ran


def test_the_servers_warnings_about_packed_batches_go_to_debug(caplog: pytest.LogCaptureFixture) -> None:
    protocol = logging.getLogger("cassandra.protocol")
    with caplog.at_level(logging.DEBUG, logger="cassandra.protocol"):
        protocol.warning("Server warning: %s", "Batch for [ks.inbox] is of size 31334, exceeding ...")
        protocol.warning("Server warning: %s", "Unlogged batch covering 15 partitions detected ...")
        protocol.warning("Server warning: %s", "Aggregation query used without partition key")
    assert [(r.levelname, r.getMessage()[:24]) for r in caplog.records] == [
        ("DEBUG", "Server warning: Batch fo"),
        ("DEBUG", "Server warning: Unlogged"),
        ("WARNING", "Server warning: Aggregat"),
    ]


async def test_requests_that_fail_before_they_go_out_do_not_recurse() -> None:
    class Refusing:
        def execute_async(self, statement: str, values: Any) -> Future:
            raise TypeError("cannot bind")  # as the driver does for values of the wrong type

    requests = [("q", None)] * 5000  # one frame each if every failure started the next one
    with pytest.raises(TypeError):
        await Requests(Refusing(), requests, limit=64).run()
