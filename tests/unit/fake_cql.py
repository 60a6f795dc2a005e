"""A parser for the CQL statement forms the Cassandra store uses, and an in-memory stand-in
for a cluster that executes them against the tables of ``schemas/cassandra.cql``.

No Cassandra server runs on this machine. The parser lets the unit tests check every
statement of the adapter against the schema (tables, columns, keys, restrictions Cassandra
enforces); the stand-in lets the store contract suite exercise the adapter's own logic (seq
checks, bucket walks, batches, row mapping, paging through the asyncio bridge). It is not
Cassandra: it models upsert/select semantics, not the server's consistency or limits.
"""

from __future__ import annotations

import operator
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cassandra.query import UNSET_VALUE

from chat_events.store.cql import Table, tables

_INSERT = re.compile(r"^INSERT INTO (\w+) \(([^)]*)\) VALUES \(([^)]*)\)( USING TTL \?)?$")
_SELECT = re.compile(
    r"^SELECT (.+?) FROM (\w+) WHERE (.+?)(?: ORDER BY (\w+) (ASC|DESC))?(?: LIMIT (\?|\d+))?( ALLOW FILTERING)?$"
)
_UPDATE = re.compile(r"^UPDATE (\w+) SET (.+?) WHERE (.+)$")
_CONDITION = re.compile(r"^(\w+) (=|<|>|<=|>=|IN) \?$")
_ASSIGNMENT = re.compile(r"^(\w+) = \?$")


@dataclass(frozen=True)
class Statement:
    kind: str  # INSERT / SELECT / UPDATE
    table: str
    columns: tuple[str, ...]  # inserted, selected or set
    where: tuple[tuple[str, str], ...] = ()  # (column, operator)
    order_by: tuple[str, str] | None = None
    limit: str | None = None  # "?" or a literal
    ttl: bool = False
    allow_filtering: bool = False
    markers: int = 0


def parse(text: str) -> Statement:
    """One statement of the adapter; ``ValueError`` for any form it does not know."""

    def conditions(clause: str) -> tuple[tuple[str, str], ...]:
        out = []
        for part in clause.split(" AND "):
            match = _CONDITION.match(part.strip())
            if match is None:
                raise ValueError(f"unknown condition {part!r} in {text!r}")
            out.append((match.group(1), match.group(2)))
        return tuple(out)

    markers = text.count("?")
    if match := _INSERT.match(text):
        columns = tuple(c.strip() for c in match.group(2).split(","))
        return Statement("INSERT", match.group(1), columns, ttl=bool(match.group(4)), markers=markers)
    if match := _SELECT.match(text):
        columns = tuple(c.strip() for c in match.group(1).split(","))
        order = (match.group(4), match.group(5)) if match.group(4) else None
        return Statement(
            "SELECT",
            match.group(2),
            columns,
            conditions(match.group(3)),
            order,
            match.group(6),
            allow_filtering=bool(match.group(7)),
            markers=markers,
        )
    if match := _UPDATE.match(text):
        sets = []
        for part in match.group(2).split(","):
            assignment = _ASSIGNMENT.match(part.strip())
            if assignment is None:
                raise ValueError(f"unknown assignment {part!r} in {text!r}")
            sets.append(assignment.group(1))
        return Statement("UPDATE", match.group(1), tuple(sets), conditions(match.group(3)), markers=markers)
    raise ValueError(f"unknown statement form: {text!r}")


def check_type(cql_type: str, value: Any) -> bool:
    """Whether the driver would serialize ``value`` for a column of ``cql_type``."""
    if cql_type == "text":
        return isinstance(value, str)
    if cql_type in ("bigint", "int"):
        return isinstance(value, int) and not isinstance(value, bool)
    if cql_type == "boolean":
        return isinstance(value, bool)
    if cql_type == "frozen<list<text>>":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    raise AssertionError(f"type {cql_type} not modelled")


class Engine:
    """Tables as dicts keyed by primary key; statements applied as Cassandra upserts/selects."""

    def __init__(self) -> None:
        self.schema: dict[str, Table] = tables()
        self.rows: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {name: {} for name in self.schema}
        self.lock = threading.Lock()
        self.executed: list[str] = []

    def run(self, stmt: Statement, values: Sequence[Any]) -> list[dict[str, Any]]:
        assert len(values) == stmt.markers, (stmt, values)
        table = self.schema[stmt.table]
        with self.lock:
            self.executed.append(f"{stmt.kind} {stmt.table}")
            if stmt.kind == "SELECT":
                return self._select(table, stmt, values)
            if stmt.kind == "INSERT":
                assigned = dict(zip(stmt.columns, values, strict=False))
                key_values: dict[str, Any] = {}
            else:
                assigned = dict(zip(stmt.columns, values, strict=False))
                key_values = dict(zip([c for c, _ in stmt.where], values[len(stmt.columns) :], strict=True))
            assigned.update(key_values)
            for column, value in assigned.items():
                if value is UNSET_VALUE:
                    continue
                assert value is not None, f"{stmt.table}.{column}: null would be a tombstone"
                assert check_type(table.columns[column], value), (stmt.table, column, value)
            key = tuple(assigned[c] for c in table.primary_key)
            row = self.rows[table.name].setdefault(key, {})
            row.update({c: v for c, v in assigned.items() if v is not UNSET_VALUE})
            return []

    def _select(self, table: Table, stmt: Statement, values: Sequence[Any]) -> list[dict[str, Any]]:
        bound = list(zip(stmt.where, values, strict=False))
        limit = values[-1] if stmt.limit == "?" else (int(stmt.limit) if stmt.limit else None)
        ops: dict[str, Callable[[Any, Any], bool]] = {
            "=": lambda a, b: a == b,
            "<": lambda a, b: a < b,
            ">": lambda a, b: a > b,
            "<=": lambda a, b: a <= b,
            ">=": lambda a, b: a >= b,
            "IN": lambda a, b: a in b,
        }
        found = [
            row
            for row in self.rows[table.name].values()
            if all(row.get(col) is not None and ops[op](row[col], value) for (col, op), value in bound)
        ]
        for column in reversed(table.clustering):
            found.sort(key=operator.itemgetter(column), reverse=table.order[column] == "DESC")
        if stmt.order_by is not None and table.order[stmt.order_by[0]] != stmt.order_by[1]:
            found.reverse()
        if limit is not None:
            found = found[:limit]
        return [{c: row.get(c) for c in stmt.columns} for row in found]


@dataclass
class FakeBatch:
    """Stands in for ``cassandra.query.BatchStatement``: collects (prepared, values)."""

    batch_type: Any = None
    is_idempotent: bool = False
    items: list[tuple[Any, tuple[Any, ...]]] = field(default_factory=list)

    def add(self, statement: Any, values: tuple[Any, ...]) -> None:
        self.items.append((statement, tuple(values)))


@dataclass
class Prepared:
    text: str
    parsed: Statement
    is_idempotent: bool = False


class FakeFuture:
    """Like the driver's ResponseFuture: callbacks run on another thread, ``page_size`` rows
    a page, further pages on ``start_fetching_next_page()``."""

    def __init__(self, produce: Callable[[], list[dict[str, Any]]], page_size: int) -> None:
        self._produce = produce
        self._page_size = page_size
        self._rows: list[dict[str, Any]] | None = None
        self._offset = 0
        self._callback: Callable[[Any], None] | None = None
        self._errback: Callable[[BaseException], None] | None = None

    def add_callbacks(self, callback: Callable[[Any], None], errback: Callable[[BaseException], None]) -> None:
        self._callback, self._errback = callback, errback
        threading.Thread(target=self._deliver, daemon=True).start()

    @property
    def has_more_pages(self) -> bool:
        return self._rows is not None and self._offset < len(self._rows)

    def start_fetching_next_page(self) -> None:
        threading.Thread(target=self._deliver, daemon=True).start()

    def _deliver(self) -> None:
        assert self._callback is not None and self._errback is not None
        try:
            if self._rows is None:
                self._rows = self._produce()
        except BaseException as exc:
            self._errback(exc)
            return
        page = self._rows[self._offset : self._offset + self._page_size]
        self._offset += self._page_size
        self._callback(page if self._rows else None)


class FakeSession:
    def __init__(self, engine: Engine, page_size: int) -> None:
        self.engine = engine
        self.page_size = page_size

    def prepare(self, text: str, keyspace: str | None = None) -> Prepared:
        assert re.search(r"\b(FROM|INTO|UPDATE) \w+\.\w+", text), f"unqualified table in {text!r}"
        return Prepared(text, parse(re.sub(r"\b(FROM|INTO|UPDATE) \w+\.", r"\1 ", text)))

    def set_keyspace(self, keyspace: str) -> None:
        pass

    def execute_async(self, statement: Any, values: Sequence[Any] = ()) -> FakeFuture:
        if isinstance(statement, FakeBatch):
            assert statement.is_idempotent

            def apply() -> list[dict[str, Any]]:
                for prepared, batch_values in statement.items:
                    assert prepared.parsed.kind != "SELECT"
                    self.engine.run(prepared.parsed, batch_values)
                return []

            return FakeFuture(apply, self.page_size)
        assert statement.is_idempotent
        return FakeFuture(lambda: self.engine.run(statement.parsed, tuple(values)), self.page_size)


class FakeCluster:
    def __init__(self, engine: Engine, page_size: int = 7) -> None:
        self.session = FakeSession(engine, page_size)
        self.shut_down = False
        self.protocol_version = 5

    def connect(self, keyspace: str | None = None) -> FakeSession:
        return self.session

    def shutdown(self) -> None:
        self.shut_down = True
