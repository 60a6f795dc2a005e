"""chat-events: a Kafka event-driven chat backend."""

__version__ = "0.1.0"
