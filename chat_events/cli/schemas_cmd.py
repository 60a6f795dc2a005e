"""``chat-events schemas check|register``: keep the wire contract backward compatible."""

from __future__ import annotations

import argparse
from typing import Any

from chat_events.codec.schemas import register_current
from chat_events.codec.schemas_check import check_schemas
from chat_events.settings import Settings


def register(sub: Any) -> None:
    schemas = sub.add_parser("schemas", help="check or register the Avro envelope schema")
    actions = schemas.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser(
        "check", help="backward compatibility of every version with its predecessor; asyncapi.yaml consistency"
    ).set_defaults(handler=check)
    actions.add_parser(
        "register", help="add the working schema as a new version in schemas/registry (if compatible)"
    ).set_defaults(handler=register_schema)


def check(args: argparse.Namespace, settings: Settings) -> int:
    report = check_schemas()
    for line in report.lines:
        print(line)
    for problem in report.problems:
        print(f"PROBLEM: {problem}")
    print("schemas: ok" if report.ok else f"schemas: {len(report.problems)} problem(s)")
    return 0 if report.ok else 1


def register_schema(args: argparse.Namespace, settings: Settings) -> int:
    report = check_schemas(allow_unregistered=True)
    if not report.ok:
        for problem in report.problems:
            print(f"PROBLEM: {problem}")
        return 1
    entry = register_current()
    if entry is None:
        print("the working schema is already the latest registered version")
    else:
        print(f"registered version {entry.version} with id {entry.schema_id}")
    return 0
