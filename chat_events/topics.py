"""Every topic in one place: name, partitions, key, cleanup policy, and which events it carries.

Keys decide order: Kafka orders records per partition, and the key picks the partition
(murmur2, the Java client's default partitioner, which aiokafka uses too). So:

* ``chat.personal-chat`` is keyed by conversation id: one conversation = one partition = one
  total order of its messages, whoever sends them.
* ``chat.user-events`` is keyed by user id: one user's connects, disconnects and rate-limit
  events stay in order, and land co-partitioned with everything else keyed by user id.

Topics are created explicitly (``chat-events topics create``) before any client touches them: a
broker that auto-creates a topic on first use picks its own partition count, and
co-partitioning then breaks silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chat_events.events.conversations import conversation_id_of
from chat_events.events.types import Envelope, PersonalChatSent
from chat_events.settings import Settings

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic as declared by chat-events (``name`` without the configured prefix)."""

    name: str
    key: str
    """What the record key is, e.g. ``conversation_id``."""
    events: tuple[str, ...]
    """Event names carried on this topic (envelopes' payload branches)."""
    description: str
    cleanup_policy: Literal["delete", "compact"] = "delete"
    retention_ms: int = 7 * DAY_MS

    def config(self) -> dict[str, str]:
        return {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}


PERSONAL_CHAT = TopicSpec(
    name="chat.personal-chat",
    key="conversation_id",
    events=("personalChatSent",),
    description="Messages sent by users, as accepted by an edge. One conversation per partition.",
)
USER_EVENTS = TopicSpec(
    name="chat.user-events",
    key="user_id",
    events=("userConnected", "userDisconnected", "userChatRateLimited"),
    description="Session and rate-limit events of users, in order per user.",
)

TOPICS: tuple[TopicSpec, ...] = (PERSONAL_CHAT, USER_EVENTS)
"""Every topic chat-events declares; asyncapi.yaml documents exactly these (a test holds it)."""

_TOPIC_OF_EVENT = {event: spec for spec in TOPICS for event in spec.events}


def topic_of_event(event_name: str) -> TopicSpec:
    """The topic an event is published to."""
    return _TOPIC_OF_EVENT[event_name]


def key_of(envelope: Envelope) -> bytes:
    """The record key of an envelope, per its topic's key rule (see the module docstring)."""
    event = envelope.payload
    if isinstance(event, PersonalChatSent):
        return (event.conversation_id or conversation_id_of(event)).encode()
    if envelope.user_id is None:
        raise ValueError(f"{envelope.name} needs userId as its key")
    return envelope.user_id.encode()


@dataclass(frozen=True, slots=True)
class ResolvedTopic:
    """A declared topic with its real name (prefix applied) and the partition count to create."""

    spec: TopicSpec
    name: str
    partitions: int
    replication_factor: int


class TopicCatalog:
    """The topics of one deployment: declared specs + configured prefix and partitioning."""

    def __init__(self, settings: Settings) -> None:
        self._prefix = settings.topic_prefix
        self._partitions = settings.topic_partitions
        self._replication = settings.topic_replication_factor

    def resolve(self, spec: TopicSpec) -> ResolvedTopic:
        return ResolvedTopic(spec, self._prefix + spec.name, self._partitions, self._replication)

    def all(self) -> list[ResolvedTopic]:
        return [self.resolve(spec) for spec in TOPICS]

    def envelope_topics(self) -> list[ResolvedTopic]:
        return [t for t in self.all() if t.spec.events]

    def for_event(self, event_name: str) -> ResolvedTopic:
        return self.resolve(topic_of_event(event_name))

    def by_name(self, name: str) -> ResolvedTopic:
        """Look a topic up by its declared or its prefixed name."""
        for topic in self.all():
            if name in (topic.name, topic.spec.name):
                return topic
        raise KeyError(name)
