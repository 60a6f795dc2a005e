"""Where Kafka is and how to talk to it: one resolution from settings, used by every client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chat_events.errors import ConfigurationError
from chat_events.kafka.embedded import REAL_STATE_FILE, read_state
from chat_events.settings import Settings


@dataclass(frozen=True, slots=True)
class KafkaTarget:
    """A resolved broker: its bootstrap servers and whether it is the embedded broker."""

    bootstrap_servers: str
    embedded: bool

    def idempotence(self, settings: Settings) -> bool:
        """Idempotent producer on/off: 'auto' means on for real Kafka, off for the embedded
        broker (Tansu answers InitProducerId with UnknownError)."""
        if settings.kafka_idempotence == "auto":
            return not self.embedded
        return settings.kafka_idempotence == "on"

    def transactions(self, settings: Settings) -> bool:
        """Transactional worker outputs on/off: 'auto' means on wherever the idempotent producer
        is on (real Kafka), off for the embedded broker (Tansu has no InitProducerId, so no
        transactions either) and for a broker run with ``CHAT_KAFKA_IDEMPOTENCE=off``."""
        if settings.kafka_transactions == "auto":
            return self.idempotence(settings)
        return settings.kafka_transactions == "on"


def resolve_target(settings: Settings) -> KafkaTarget:
    """``CHAT_KAFKA_BOOTSTRAP_SERVERS`` if set (the embedded broker if ``CHAT_KAFKA_BROKER`` says
    so, or by default if the data directory records it there), else the broker recorded as
    running in the data directory (the embedded broker, or the real Kafka node ``chat-events up``
    runs), else a clear error telling the user what to start."""
    state = read_state(settings.data_dir)
    if settings.kafka_bootstrap_servers:
        servers = settings.kafka_bootstrap_servers
        if settings.kafka_broker == "auto":
            embedded = state is not None and state.bootstrap_servers == servers
        else:
            embedded = settings.kafka_broker == "embedded"
        return KafkaTarget(servers, embedded=embedded)
    if state is not None:
        return KafkaTarget(state.bootstrap_servers, embedded=True)
    real = read_state(settings.data_dir, REAL_STATE_FILE)
    if real is not None:
        return KafkaTarget(real.bootstrap_servers, embedded=False)
    raise ConfigurationError(
        "no Kafka broker: start one with `chat-events broker` (or `chat-events up`), "
        "or set CHAT_KAFKA_BOOTSTRAP_SERVERS to an external cluster"
    )


def client_options(settings: Settings, target: KafkaTarget) -> dict[str, Any]:
    """Connection options shared by every aiokafka client (producer, consumer, admin)."""
    options: dict[str, Any] = {
        "bootstrap_servers": target.bootstrap_servers,
        "client_id": settings.kafka_client_id,
        "request_timeout_ms": settings.kafka_request_timeout_ms,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        if settings.kafka_sasl_password is not None:
            options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        options["ssl_context"] = create_ssl_context()
    return options


EMBEDDED_FETCH_WAIT_MS = 10
"""The embedded broker answers a fetch only when its wait is over: this is its per-hop latency."""
KAFKA_FETCH_WAIT_MS = 500
"""Kafka answers a fetch as soon as data arrives: the wait only bounds idle polling (its default)."""


def fetch_wait_ms(settings: Settings, target: KafkaTarget) -> int:
    """``CHAT_KAFKA_FETCH_MAX_WAIT_MS``, or by default 10 ms on the embedded broker (its per-hop
    latency) and 500 ms on Kafka (which returns as soon as a record is there)."""
    if settings.kafka_fetch_max_wait_ms is not None:
        return settings.kafka_fetch_max_wait_ms
    return EMBEDDED_FETCH_WAIT_MS if target.embedded else KAFKA_FETCH_WAIT_MS


def consumer_options(settings: Settings, target: KafkaTarget) -> dict[str, Any]:
    """Options for every consumer: the fetch wait of :func:`fetch_wait_ms`, and
    ``read_committed``: records of open or aborted transactions (the workers' outputs on real
    Kafka) are never seen. Harmless on non-transactional data and on the embedded broker; end
    offsets read through such a consumer are the last stable offsets."""
    return {
        **client_options(settings, target),
        "fetch_max_wait_ms": fetch_wait_ms(settings, target),
        "isolation_level": "read_committed",
    }
