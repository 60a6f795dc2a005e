"""Schema id sources: the repository's own manifest, or a Confluent-compatible registry.

Both answer the two questions the codec asks: "which id do I write for my schema?" (once, at
start-up) and "which schema wrote the data with this id?" (cached after the first answer).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Protocol

from chat_events.codec.schemas import Schema, canonical, load_registered
from chat_events.errors import SchemaRegistryError

CONFLUENT_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class SchemaSource(Protocol):
    def writer_id(self, schema: Schema) -> int:
        """The id under which ``schema`` is registered (registering it if the source can)."""

    def schema_by_id(self, schema_id: int) -> Schema:
        """The schema registered under ``schema_id``."""


class LocalSchemaSource:
    """Ids from ``schemas/registry/manifest.json``; read-only."""

    def __init__(self, schema_dir: Path | None = None) -> None:
        self._by_id = {r.schema_id: r.schema for r in load_registered(schema_dir)}
        self._by_text = {canonical(s): i for i, s in self._by_id.items()}

    def writer_id(self, schema: Schema) -> int:
        try:
            return self._by_text[canonical(schema)]
        except KeyError:
            raise SchemaRegistryError(
                "the envelope schema is not registered in schemas/registry/manifest.json; "
                "run `chat-events schemas check` and `chat-events schemas register`"
            ) from None

    def schema_by_id(self, schema_id: int) -> Schema:
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise SchemaRegistryError(f"unknown schema id {schema_id} (not in the local manifest)") from None


class ConfluentSchemaSource:
    """A Confluent-compatible schema registry over its REST API (also Karapace, Apicurio's
    compatibility API, Redpanda). Registers under ``<topic>-value`` subjects
    (TopicNameStrategy); the registry returns the same global id for the same schema."""

    def __init__(self, url: str, subjects: list[str], *, timeout_s: float = 10.0) -> None:
        self._url = url.rstrip("/")
        self._subjects = subjects
        self._timeout_s = timeout_s
        self._by_id: dict[int, Schema] = {}

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self._url + path,
            data=data,
            method=method,
            headers={"Content-Type": CONFLUENT_CONTENT_TYPE, "Accept": CONFLUENT_CONTENT_TYPE},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise SchemaRegistryError(f"schema registry {method} {path}: HTTP {exc.code} {detail}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SchemaRegistryError(f"schema registry {self._url} unreachable: {exc}") from exc

    def writer_id(self, schema: Schema) -> int:
        body = {"schemaType": "AVRO", "schema": json.dumps(schema)}
        schema_id: int | None = None
        for subject in self._subjects:
            quoted = urllib.parse.quote(subject, safe="")
            answer = self._request("POST", f"/subjects/{quoted}/versions", body)
            schema_id = int(answer["id"])
        if schema_id is None:
            raise SchemaRegistryError("no subject to register the envelope schema under")
        self._by_id[schema_id] = schema
        return schema_id

    def schema_by_id(self, schema_id: int) -> Schema:
        cached = self._by_id.get(schema_id)
        if cached is None:
            answer = self._request("GET", f"/schemas/ids/{schema_id}")
            cached = json.loads(answer["schema"])
            self._by_id[schema_id] = cached
        return cached


def schema_source_for(registry_url: str | None, subjects: list[str], schema_dir: Path | None = None) -> SchemaSource:
    """The configured source: a remote registry when a URL is set, else the local manifest."""
    if registry_url:
        return ConfluentSchemaSource(registry_url, subjects)
    return LocalSchemaSource(schema_dir)
