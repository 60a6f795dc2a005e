"""Kafka plumbing: where the broker is, the embedded broker, topic administration."""
