"""Typed settings, read once from the environment (prefix ``CHAT_``) and passed down.

Nothing in the package reads ``os.environ`` on its own: the CLI (or a test) builds one
:class:`Settings` and hands it to whatever it constructs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Idempotence = Literal["auto", "on", "off"]
Transactions = Literal["auto", "on", "off"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
DEV_AUTH_SECRET = "chat-events-development-secret-do-not-use"


class Settings(BaseSettings):
    """Every knob of chat-events. Environment variable = ``CHAT_`` + upper-cased field name."""

    model_config = SettingsConfigDict(env_prefix="CHAT_", extra="ignore", frozen=True)

    # --- Kafka connection -------------------------------------------------------------------
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        description="Comma-separated host:port list of an external Kafka cluster. Unset: use the "
        "embedded broker started by `chat-events broker`/`chat-events up`.",
    )
    kafka_broker: Literal["auto", "kafka", "embedded"] = Field(
        default="auto",
        description="What CHAT_KAFKA_BOOTSTRAP_SERVERS points at: 'embedded' = the embedded broker (no "
        "idempotent producer, no transactions, fetches that answer only when their wait is over), 'kafka' = "
        "Kafka; 'auto' = the embedded broker when the data directory records it at that address.",
    )
    kafka_client_id: str = "chat-events"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None

    # --- Producer ---------------------------------------------------------------------------
    kafka_idempotence: Idempotence = Field(
        default="auto",
        description="Idempotent producer. 'auto' = on for an external cluster, off for the embedded "
        "broker (it does not implement InitProducerId).",
    )
    kafka_transactions: Transactions = Field(
        default="auto",
        description="Exactly-once worker outputs: each stage's outputs and its input offsets commit in one "
        "Kafka transaction. 'auto' = on where the idempotent producer is on (an external cluster), off for "
        "the embedded broker (no InitProducerId, so no transactions) or with CHAT_KAFKA_IDEMPOTENCE=off.",
    )
    kafka_linger_ms: int = Field(default=2, ge=0, le=1000)
    kafka_max_batch_bytes: int = Field(default=256 * 1024, ge=1024)
    kafka_request_timeout_ms: int = Field(default=10_000, ge=100)
    kafka_send_timeout_s: float = Field(
        default=15.0, gt=0, description="Upper bound for one publish_many batch, retries included; never a hang."
    )
    kafka_connect_timeout_s: float = Field(default=10.0, gt=0)
    kafka_compression: Literal["none", "gzip"] = "none"

    # --- Consumer ---------------------------------------------------------------------------
    kafka_fetch_max_wait_ms: int | None = Field(
        default=None,
        ge=0,
        description="Long-poll wait of every consumer. Unset: 10 ms on the embedded broker, which does not "
        "answer a fetch early when data arrives (so this is per-hop latency there), 500 ms on Kafka, which "
        "answers as soon as a record is there (the wait only bounds idle polling).",
    )
    kafka_idle_pause_ms: int = Field(
        default=250,
        ge=0,
        description="Embedded broker only: a consumer that got no record and no wake-up for this long stops "
        "fetching until a local producer's wake-up datagram arrives (or the next probe). 0 = always poll.",
    )
    kafka_idle_probe_ms: int = Field(
        default=2000,
        ge=10,
        description="Embedded broker only: how often a paused consumer fetches anyway (records from producers "
        "that do not send wake-ups, such as other Kafka clients).",
    )

    # --- Topics -----------------------------------------------------------------------------
    topic_prefix: str = Field(default="", description="Prefix for every topic name (tenancy, tests).")
    topic_partitions: int = Field(default=8, ge=1, le=1024)
    topic_replication_factor: int = Field(default=1, ge=1, le=7)

    # --- Schemas ----------------------------------------------------------------------------
    schema_registry_url: str | None = Field(
        default=None,
        description="Confluent-compatible schema registry. Unset: ids come from schemas/registry.",
    )
    max_payload_bytes: int = Field(
        default=32 * 1024, ge=1, description="Largest message body (personalChatSent.payload)."
    )
    edit_window_s: int = Field(
        default=48 * 3600,
        ge=0,
        description="How long after sending its sender may edit a text message (Telegram's 48 hours).",
    )
    recall_window_s: int = Field(
        default=48 * 3600,
        ge=0,
        description="How long after sending its sender may recall a message for everyone (about WhatsApp's 2 days).",
    )

    # --- Local state ------------------------------------------------------------------------
    data_dir: Path = Field(default=Path(".chat-events"), description="Embedded store and broker state.")
    embedded_broker_port: int = Field(default=9092, ge=0, le=65535, description="0 = any free port.")
    log_level: LogLevel = Field(
        default="INFO",
        description="Level of chat-events' own log lines under `worker`, `edge` and `up` (their `--log-level` "
        "overrides it); libraries (aiokafka, uvicorn, the Cassandra driver) log WARNING and above.",
    )

    # --- Store ------------------------------------------------------------------------------
    store_backend: Literal["embedded", "cassandra"] = Field(
        default="embedded",
        description="'embedded' = a SQLite file under CHAT_DATA_DIR; 'cassandra' = CHAT_CASSANDRA_*.",
    )
    store_sync: Literal["normal", "full"] = Field(
        default="normal",
        description="Embedded store durability: 'normal' survives a killed process, 'full' also "
        "a power loss (fsync per commit).",
    )
    cassandra_contact_points: str | None = Field(
        default=None, description="Comma-separated Cassandra hosts; setting it selects the Cassandra store."
    )
    cassandra_port: int = Field(default=9042, ge=1, le=65535)
    cassandra_keyspace: str = Field(default="chat_events", pattern=r"^[a-z][a-z0-9_]{0,47}$")
    cassandra_local_dc: str | None = None
    cassandra_username: str | None = None
    cassandra_password: SecretStr | None = None
    cassandra_consistency: Literal["ONE", "LOCAL_ONE", "LOCAL_QUORUM", "QUORUM", "EACH_QUORUM", "ALL"] = "LOCAL_QUORUM"
    cassandra_replication: str = Field(
        default="{'class': 'SimpleStrategy', 'replication_factor': 1}",
        description="Keyspace replication map used by `chat-events store init`.",
    )
    cassandra_protocol_version: int = Field(
        default=5,
        ge=3,
        le=6,
        description="CQL native protocol version: 5 for Cassandra 4.0+ (no downgrade round trips), 4 for 3.x.",
    )
    cassandra_request_timeout_s: float = Field(default=10.0, gt=0)

    # --- Worker (stream processors) ------------------------------------------------------
    worker_app_id: str = Field(default="chat-events-worker", description="Consumer group of the workers.")
    worker_engine: Literal["native", "faust"] = Field(
        default="native",
        description="What runs the stages: 'native' = the batch runners on one aiokafka consumer "
        "(transactional on Kafka); 'faust' = one faust-streaming agent per stage (the `faust` extra), "
        "at-least-once with idempotent stages; see docs/architecture.md for when to pick which.",
    )
    worker_batch_max: int = Field(
        default=500, ge=1, le=100_000, description="Most records per stage batch (a batch is what has arrived)."
    )
    worker_batch_within_ms: int = Field(
        default=5,
        ge=1,
        le=10_000,
        description="Faust engine only: how long `noack_take` waits to fill a batch (adds up to this to each hop).",
    )
    read_receipts_max_group: int = Field(
        default=100,
        ge=0,
        description="Read receipts are pushed to the other members of 1:1 conversations and of groups up to "
        "this size (0: 1:1 only).",
    )
    fanout_write_max_members: int = Field(
        default=1000,
        ge=2,
        description="Groups up to this size get an inbox copy per member (write fan-out); larger "
        "ones are read-fan-out rooms.",
    )
    edge_heartbeat_timeout_ms: int = Field(
        default=15_000, ge=100, description="An edge silent this long is dead; its sessions are expired."
    )
    rate_limit_window_ms: int = Field(default=60_000, ge=1000, description="Window for rate-limit accounting.")
    worker_session_timeout_s: float = Field(
        default=10.0, gt=0, description="A worker silent this long (e.g. killed) loses its partitions."
    )
    worker_rebalance_timeout_s: float = Field(
        default=5.0, gt=0, description="How long a rebalance waits for members to rejoin."
    )
    worker_retry_max_backoff_s: float = Field(default=5.0, gt=0, description="Cap of the retry backoff.")
    worker_stop_timeout_s: float = Field(
        default=15.0, gt=0, description="How long a stopping worker waits for its batch in flight before abandoning it."
    )

    # --- Edge (WebSocket + HTTP) ---------------------------------------------------------
    environment: Literal["development", "production"] = Field(
        default="development",
        description="'development' enables dev tokens (POST /v1/dev/token) and allows the default secret.",
    )
    auth_secret: SecretStr = Field(
        default=SecretStr(DEV_AUTH_SECRET),
        description="HMAC key that signs and verifies access tokens (HS256). Must be set, at least 32 "
        "characters, outside development.",
    )
    token_ttl_s: int = Field(default=3600, ge=10, le=30 * 86400, description="Lifetime of dev tokens.")
    allowed_origins: str = Field(
        default="",
        description="Comma-separated Origins allowed to open /ws (e.g. https://chat.example.com); '*' = any. "
        "Requests without an Origin header (non-browser clients) are always allowed.",
    )
    edge_host: str = Field(default="127.0.0.1", description="Interface the edge listens on.")
    edge_port: int = Field(default=8000, ge=0, le=65535, description="Port of the edge (HTTP and /ws).")
    edge_name: str | None = Field(default=None, description="Readable prefix of the edge id (default: host name).")
    edge_heartbeat_interval_ms: int = Field(
        default=3000, ge=50, description="How often an edge tells the workers it is alive."
    )
    ws_max_frame_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    ws_heartbeat_s: int = Field(
        default=30, ge=1, description="Clients send a heartbeat this often; silent for twice as long = closed."
    )
    ws_sign_in_timeout_s: float = Field(default=10.0, gt=0, description="Time to sign in after connecting.")
    edge_header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Time for an HTTP request's line and headers to arrive (from connecting, or from a kept-alive "
        "connection's next request); later: 408 and closed (against slowloris).",
    )
    edge_max_pending_per_address: int = Field(
        default=256,
        ge=0,
        description="Connections one client address may hold before their HTTP request is answered or their "
        "WebSocket signed in; more are refused (429, code 10). 0 = no limit.",
    )
    ws_outbound_queue: int = Field(
        default=2000, ge=10, description="Frames queued for one slow socket before it is closed (1013)."
    )
    ws_per_message_deflate: bool = Field(
        default=False,
        description="Accept the permessage-deflate extension when a client offers it. Off: frames are a few "
        "hundred bytes of JSON, and compression costs ~37 KiB of zlib state per socket and CPU per frame.",
    )
    edge_max_worker_lag: int = Field(
        default=20_000,
        ge=0,
        description="Back-pressure: refuse sends (code 13, retry later) while the workers are more than this "
        "many records behind on chat.personal-chat + chat.inbox; 0 = never refuse.",
    )
    edge_lag_check_ms: int = Field(default=1000, ge=100, description="How often an edge reads the workers' lag.")
    send_rate_per_s: float = Field(default=20.0, gt=0, description="Per-user send rate (token bucket refill).")
    send_burst: int = Field(default=40, ge=1, description="Per-user send burst (token bucket size).")
    max_connections_per_user: int = Field(default=10, ge=1, description="Open sockets per user on one edge.")
    membership_cache_s: float = Field(
        default=1.0,
        ge=0,
        description="How long an edge trusts a group's member list read from the store to let a member in "
        "(a refusal is always read afresh).",
    )

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return value.strip()

    @model_validator(mode="after")
    def _no_default_secret_outside_development(self) -> Settings:
        secret = self.auth_secret.get_secret_value()
        if self.environment != "development" and (secret == DEV_AUTH_SECRET or len(secret) < 32):
            raise ValueError(
                "CHAT_AUTH_SECRET must be set to a random value of at least 32 characters outside development"
            )
        return self

    @field_validator("cassandra_contact_points")
    @classmethod
    def _blank_contact_points(cls, value: str | None) -> str | None:
        return value.strip() if value and value.strip() else None

    @property
    def store_kind(self) -> Literal["embedded", "cassandra"]:
        """Cassandra when contact points are set, or when explicitly chosen."""
        return "cassandra" if self.cassandra_contact_points else self.store_backend

    @property
    def store_path(self) -> Path:
        return self.data_dir / "store.sqlite3"

    @field_validator("topic_prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        if not set(value) <= allowed:
            raise ValueError("topic_prefix may contain only letters, digits, '.', '_' and '-'")
        return value
