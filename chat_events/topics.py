"""Every topic in one place: name, partitions, key, cleanup policy, and which events it carries.

Keys decide order: Kafka orders records per partition, and the key picks the partition
(murmur2, the Java client's default partitioner, which aiokafka uses too). Record keys are UTF-8
strings (:func:`key_of`):

* ``chat.personal-chat`` (``personalChatSent``): the conversation id (``dm:<a>:<b>`` of the
  sorted user pair, or the group id). One conversation = one partition = one total order of its
  messages, whoever sends them.
* ``chat.message-stored`` and ``chat.room-messages`` (``messageStored``): the message's
  conversation id, so stored messages keep the order of their ``seq``.
* ``chat.inbox`` (``messageFannedOut``), ``chat.edge.<edge_id>`` (``messageDispatched``) and
  ``chat.push`` (``offlinePushRequested``): the recipient id. One recipient's messages stay in
  ``user_seq`` order, co-partitioned with everything else keyed by user id. ``userTyping`` on
  ``chat.edge.<edge_id>`` is keyed by its conversation id: one conversation's typing states stay
  in order. The conversation-list events a user causes (``conversationRead``,
  ``conversationFlagsSet``, ``allConversationsRead``) go to ``chat.inbox`` keyed by that user
  (``userId``): they reach the one worker writing the user's conversation rows, in order with
  the user's inbox. ``conversationChanged`` on ``chat.edge.<edge_id>`` is keyed by its
  recipient, ``readReceiptDispatched`` and ``deliveryReceiptDispatched`` by their first recipient.
* ``chat.user-events``: the user id (the envelope's ``userId``) for ``userConnected``,
  ``userDisconnected``, ``userChatRateLimited``, ``userBlocked`` and ``userUnblocked`` (the
  blocker) and ``deviceAcked``, so one user's events stay in order; the edge id for
  ``edgeHeartbeat``, which an edge publishes once to *every* partition (explicit partition) so
  each partition's reader sees it in line with that partition's session events.
* ``chat.presence`` (``userPresenceChanged``): the user id.
* ``chat.group-events`` (``groupCreated``, ``groupMemberJoined``, ``groupMemberLeft``): the
  group id: one group's membership changes stay in order.
* ``chat.dead-letter`` (``recordDeadLettered``): the source topic.

``chat.edge.{edge_id}`` is a template: one delivery topic per edge node, named by
:func:`edge_topic_name` (edge ids: :mod:`chat_events.edges`). It is declared here and documented
in asyncapi.yaml, but :meth:`TopicCatalog.all` leaves it out: each edge creates its own topic
(:meth:`TopicCatalog.edge_topic`) when it starts.

Topics are created explicitly (``chat-events topics create``) before any client touches them: a
broker that auto-creates a topic on first use picks its own partition count, and
co-partitioning then breaks silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chat_events.edges import EDGE_ID_PATTERN, validate_edge_id
from chat_events.events.conversation_events import ConversationChanged, DeliveryReceiptDispatched, ReadReceiptDispatched
from chat_events.events.conversations import conversation_id_of
from chat_events.events.group_events import GROUP_ADMIN_EVENTS
from chat_events.events.message_events import MESSAGE_CHANGE_EVENTS
from chat_events.events.types import (
    EdgeHeartbeat,
    Envelope,
    GroupCreated,
    GroupMemberJoined,
    GroupMemberLeft,
    MessageDispatched,
    MessageDispatchedBatch,
    MessageFannedOut,
    MessageFannedOutBatch,
    MessageStored,
    OfflinePushRequested,
    PersonalChatSent,
    RecordDeadLettered,
    UserTyping,
)
from chat_events.settings import Settings

DAY_MS = 24 * 60 * 60 * 1000
EDGE_TOPIC_PREFIX = "chat.edge."
EDGE_ID_PLACEHOLDER = "{edge_id}"


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
    per_edge: bool = False
    """A template (``name`` holds ``{edge_id}``): one topic per edge node, never created by
    :meth:`TopicCatalog.all`; see :meth:`TopicCatalog.edge_topic`."""

    def config(self) -> dict[str, str]:
        return {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}

    @property
    def address(self) -> str:
        """The AsyncAPI channel address: the name, with ``{edge_id}`` as the ``{edgeId}`` parameter."""
        return self.name.replace(EDGE_ID_PLACEHOLDER, "{edgeId}")


PERSONAL_CHAT = TopicSpec(
    name="chat.personal-chat",
    key="conversation_id",
    events=("personalChatSent", "messageEdited", "messageRecalled", "messageDeleted", "messageReacted"),
    description="Messages sent by users, and their changes (edits, recalls, deletes, reactions), as accepted by an "
    "edge. One conversation per partition.",
)
USER_EVENTS = TopicSpec(
    name="chat.user-events",
    key="user_id (edge_id for edgeHeartbeat)",
    events=(
        "userConnected",
        "userDisconnected",
        "userChatRateLimited",
        "edgeHeartbeat",
        "userBlocked",
        "userUnblocked",
        "deviceAcked",
        "presenceSettingsSet",
    ),
    description=(
        "Session, rate-limit, block, device-ack and presence-setting events of users, in order per user; "
        "edge heartbeats on every partition."
    ),
)
MESSAGE_STORED = TopicSpec(
    name="chat.message-stored",
    key="conversation_id",
    events=("messageStored",),
    description="Messages as stored, with their conversation seq. One conversation per partition.",
)
ROOM_MESSAGES = TopicSpec(
    name="chat.room-messages",
    key="conversation_id",
    events=("messageStored",),
    description="Stored messages of read-fan-out conversations (large groups), read by every edge.",
)
INBOX = TopicSpec(
    name="chat.inbox",
    key="recipient_id (the first recipient for messageFannedOutBatch; userId for the conversation-list events)",
    events=(
        "messageFannedOut",
        "messageFannedOutBatch",
        "conversationRead",
        "conversationFlagsSet",
        "allConversationsRead",
        "readReceiptsSet",
    ),
    description="A stored message for each recipient's inbox (write fan-out; one record per recipient, or per "
    "inbox partition for groups), in order per recipient; and each user's reads, pins, mutes and removes of "
    "their conversations, in order with their inbox.",
)
EDGE_DELIVERY = TopicSpec(
    name=EDGE_TOPIC_PREFIX + EDGE_ID_PLACEHOLDER,
    key="recipient_id (the first recipient for messageDispatchedBatch and the receipts; "
    "conversation_id for userTyping)",
    events=(
        "messageDispatched",
        "messageDispatchedBatch",
        "userTyping",
        "userDisconnected",
        "conversationChanged",
        "readReceiptDispatched",
        "deliveryReceiptDispatched",
    ),
    description="Messages, typing states, conflict-login kicks, conversation-list changes and receipts for "
    "the sessions held by one edge node (one topic per edge).",
    retention_ms=DAY_MS,
    per_edge=True,
)
PUSH = TopicSpec(
    name="chat.push",
    key="recipient_id",
    events=("offlinePushRequested",),
    description="Push notifications to send to recipients without a live session.",
    retention_ms=DAY_MS,
)
PRESENCE = TopicSpec(
    name="chat.presence",
    key="user_id",
    events=("userPresenceChanged",),
    description="Users going online and offline, in order per user.",
)
GROUP_EVENTS = TopicSpec(
    name="chat.group-events",
    key="group_id",
    events=(
        "groupCreated",
        "groupMemberJoined",
        "groupMemberLeft",
        "groupUpdated",
        "groupMemberRoleSet",
        "groupMemberMuted",
        "groupDissolved",
    ),
    description="Group creation, membership, roles, settings and dissolution, in order per group.",
)
DEAD_LETTER = TopicSpec(
    name="chat.dead-letter",
    key="source_topic",
    events=("recordDeadLettered",),
    description="Records a stage could not process, verbatim, with the reason.",
    retention_ms=30 * DAY_MS,
)

TOPICS: tuple[TopicSpec, ...] = (
    PERSONAL_CHAT,
    USER_EVENTS,
    MESSAGE_STORED,
    ROOM_MESSAGES,
    INBOX,
    EDGE_DELIVERY,
    PUSH,
    PRESENCE,
    GROUP_EVENTS,
    DEAD_LETTER,
)
"""Every topic chat-events declares, templates included; asyncapi.yaml documents exactly these (a
test holds it). An event on several topics is listed first on its primary topic."""

_TOPICS_OF_EVENT: dict[str, tuple[TopicSpec, ...]] = {}
for _spec in TOPICS:
    for _event in _spec.events:
        _TOPICS_OF_EVENT[_event] = (*_TOPICS_OF_EVENT.get(_event, ()), _spec)


def topic_of_event(event_name: str) -> TopicSpec:
    """The primary topic an event is published to (for ``messageDispatched`` and ``userTyping``
    the per-edge template: see :func:`edge_topic_name`)."""
    return _TOPICS_OF_EVENT[event_name][0]


def topics_of_event(event_name: str) -> tuple[TopicSpec, ...]:
    """Every topic an event is published to, the primary first (``messageStored``: message-stored,
    then room-messages)."""
    return _TOPICS_OF_EVENT[event_name]


def edge_topic_name(edge_id: str, prefix: str = "") -> str:
    """The delivery topic of one edge node: ``<prefix>chat.edge.<edge_id>``. Raises
    :class:`ValueError` for an invalid edge id."""
    return f"{prefix}{EDGE_TOPIC_PREFIX}{validate_edge_id(edge_id)}"


def key_of(envelope: Envelope) -> bytes:
    """The record key of an envelope, per its topic's key rule (see the module docstring)."""
    event = envelope.payload
    if isinstance(event, PersonalChatSent):
        return (event.conversation_id or conversation_id_of(event)).encode()
    if isinstance(event, MessageStored):
        return event.message.conversation_id.encode()
    if isinstance(event, (MessageFannedOut, MessageDispatched, OfflinePushRequested, ConversationChanged)):
        return event.recipient_id.encode()
    if isinstance(
        event, (MessageFannedOutBatch, MessageDispatchedBatch, ReadReceiptDispatched, DeliveryReceiptDispatched)
    ):
        return event.recipient_ids[0].encode()  # every recipient maps to the same partition
    if isinstance(event, MESSAGE_CHANGE_EVENTS):
        return event.conversation_id.encode()  # the partition of the conversation's sends
    if isinstance(event, (GroupCreated, GroupMemberJoined, GroupMemberLeft, *GROUP_ADMIN_EVENTS)):
        return event.group_id.encode()
    if isinstance(event, EdgeHeartbeat):
        return event.edge_id.encode()
    if isinstance(event, UserTyping):
        return event.conversation_id.encode()
    if isinstance(event, RecordDeadLettered):
        return event.source_topic.encode()
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
        """Every topic to create: the declared ones except per-edge templates."""
        return [self.resolve(spec) for spec in TOPICS if not spec.per_edge]

    def envelope_topics(self) -> list[ResolvedTopic]:
        return [t for t in self.all() if t.spec.events]

    def for_event(self, event_name: str) -> ResolvedTopic:
        """The primary topic of an event. For ``messageDispatched`` and ``userTyping`` this is the
        per-edge template, whose name still holds ``{edge_id}``: use :meth:`edge_topic` for the
        real topic."""
        return self.resolve(topic_of_event(event_name))

    def topics_for_event(self, event_name: str) -> list[ResolvedTopic]:
        """Every topic of an event, the primary first (templates unresolved, as in :meth:`for_event`)."""
        return [self.resolve(spec) for spec in topics_of_event(event_name)]

    def edge_topic(self, edge_id: str) -> ResolvedTopic:
        """The delivery topic of one edge node, prefix applied (raises :class:`ValueError` for an
        invalid edge id)."""
        return ResolvedTopic(EDGE_DELIVERY, edge_topic_name(edge_id, self._prefix), self._partitions, self._replication)

    def is_edge_topic(self, name: str) -> bool:
        """Whether ``name`` is an edge's delivery topic (``<prefix>chat.edge.<edge_id>``)."""
        return name.startswith(self._prefix + EDGE_TOPIC_PREFIX)

    def by_name(self, name: str) -> ResolvedTopic:
        """Look a topic up by its declared or its prefixed name (an edge's delivery topic too)."""
        for topic in self.all():
            if name in (topic.name, topic.spec.name):
                return topic
        for prefix in (self._prefix + EDGE_TOPIC_PREFIX, EDGE_TOPIC_PREFIX):
            edge_id = name[len(prefix) :] if name.startswith(prefix) else ""
            if EDGE_ID_PATTERN.fullmatch(edge_id):
                return self.edge_topic(edge_id)
        raise KeyError(name)
