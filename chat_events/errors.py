"""The error types of chat-events. Policy travels on the exception (``retriable``, ``code``),
so callers decide what to do without listing exception classes."""

from __future__ import annotations


class ChatEventsError(Exception):
    """Base of every error chat-events raises on purpose."""

    code: str = "internal_error"
    retriable: bool = False
    exit_code: int = 1
    """The command line's exit status for it: 1 = could not be done (broker, store, settings),
    2 = bad input (nothing reached Kafka), 3 = an unknown topic."""


class UsageError(ChatEventsError, ValueError):
    """A command's arguments cannot be used (an unreadable ``--json @file``, an event a topic
    does not carry); nothing reached Kafka."""

    code = "usage_error"
    exit_code = 2


class UnknownTopicError(ChatEventsError, ValueError):
    """A topic name chat-events does not declare (nor an edge's delivery topic)."""

    code = "unknown_topic"
    exit_code = 3


class ConfigurationError(ChatEventsError):
    """Settings or environment do not allow the requested operation."""

    code = "configuration_error"


class IdempotenceUnsupportedError(ConfigurationError):
    """The broker answered but refused (or never granted) an idempotent producer id: it does
    not support idempotent producers (Tansu, Kafka < 0.11). Fix: ``CHAT_KAFKA_IDEMPOTENCE=off``."""

    code = "idempotence_unsupported"


class TransactionsUnsupportedError(ConfigurationError):
    """The broker refused a transactional producer (no transactions, or no authorization for the
    workers' transactional ids): set ``CHAT_KAFKA_TRANSACTIONS=off`` for it."""

    code = "transactions_unsupported"


class EventValidationError(ChatEventsError, ValueError):
    """An event does not satisfy its contract. ``field`` is the dotted path of the offending field
    in the envelope's JSON form, e.g. ``payload.personalChatSent.message_id``."""

    code = "invalid_event"
    exit_code = 2

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)


class EventDecodeError(ChatEventsError):
    """Bytes from a topic are not a decodable envelope (bad framing, unknown schema id, corrupt data)."""

    code = "undecodable_event"


class SchemaRegistryError(ChatEventsError):
    """The schema registry (local manifest or remote) cannot answer."""

    code = "schema_registry_error"
    retriable = True


class PublishError(ChatEventsError):
    """The broker did not acknowledge a publish within the configured time."""

    code = "publish_failed"
    retriable = True


class BrokerUnavailableError(PublishError):
    """No broker could be reached at the configured bootstrap servers."""

    code = "broker_unavailable"


class StoreUnavailableError(ChatEventsError):
    """The store did not answer (timeout, node down, database locked): retry later."""

    code = "store_unavailable"
    retriable = True


class SeqConflictError(ChatEventsError):
    """A seq the caller assigned is already taken by another row. The caller's counters are
    stale (e.g. another worker owned the partition a moment ago): reload them and retry."""

    code = "seq_conflict"
    retriable = True
