"""Producers: typed publishing of chat envelopes on aiokafka."""

from chat_events.producers.publisher import EventPublisher, PublishResult

__all__ = ["EventPublisher", "PublishResult"]
