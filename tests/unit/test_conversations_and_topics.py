from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat_events.events import (
    EVENT_TYPES,
    AllConversationsRead,
    ChatMessage,
    ConversationChanged,
    ConversationFlagsSet,
    ConversationRead,
    DeliveryReceiptDispatched,
    DeviceAcked,
    EdgeHeartbeat,
    Event,
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
    ReadReceiptDispatched,
    ReadReceiptsSet,
    RecordDeadLettered,
    UserBlocked,
    UserPresenceChanged,
    UserTyping,
    UserUnblocked,
    direct_conversation_id,
    new_envelope,
)
from chat_events.events.conversations import conversation_id_of
from chat_events.events.group_events import GroupDissolved, GroupMemberMuted, GroupMemberRoleSet, GroupUpdated
from chat_events.events.message_events import MessageDeleted, MessageEdited, MessageReacted, MessageRecalled
from chat_events.events.presence_events import PresenceSettingsSet
from chat_events.events.types import UserConnected
from chat_events.settings import Settings
from chat_events.topics import (
    EDGE_DELIVERY,
    TOPICS,
    USER_EVENTS,
    TopicCatalog,
    edge_topic_name,
    key_of,
    topic_of_event,
    topics_of_event,
)

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,20}", fullmatch=True)


@given(ids, ids)
def test_direct_conversation_id_is_symmetric(a: str, b: str) -> None:
    assert direct_conversation_id(a, b) == direct_conversation_id(b, a)


def test_direct_conversation_id_is_sorted_pair() -> None:
    assert direct_conversation_id("bob", "alice") == "dm:alice:bob"


def _message(sender: str, target: str, target_type: str = "user") -> PersonalChatSent:
    return PersonalChatSent(
        message_id=str(uuid.uuid4()), sender_id=sender, target_id=target, payload="x", target_type=target_type
    )


def test_both_directions_of_a_dm_share_the_key() -> None:
    there = new_envelope(_message("alice", "bob"), user_id="alice")
    back = new_envelope(_message("bob", "alice"), user_id="bob")
    assert key_of(there) == key_of(back) == b"dm:alice:bob"


def test_group_messages_are_keyed_by_group() -> None:
    envelope = new_envelope(_message("alice", "g-1", "group"), user_id="alice")
    assert conversation_id_of(envelope.payload) == "g-1"  # type: ignore[arg-type]
    assert key_of(envelope) == b"g-1"


def test_user_events_are_keyed_by_user() -> None:
    assert key_of(new_envelope(UserConnected(edge_id="e1"), user_id="carol")) == b"carol"


def test_user_event_without_user_has_no_key() -> None:
    with pytest.raises(ValueError, match="userId"):
        key_of(new_envelope(UserConnected()))


def test_every_event_has_a_topic_and_only_stored_messages_and_kicks_have_two() -> None:
    assert {event for spec in TOPICS for event in spec.events} == set(EVENT_TYPES)
    for name in EVENT_TYPES:
        specs = topics_of_event(name)
        assert topic_of_event(name) is specs[0]
        assert len(specs) == (2 if name in ("messageStored", "userDisconnected") else 1), name
    assert topics_of_event("userDisconnected") == (USER_EVENTS, EDGE_DELIVERY)  # primary: user-events
    assert [s.name for s in topics_of_event("messageStored")] == ["chat.message-stored", "chat.room-messages"]
    assert topic_of_event("personalChatSent").name == "chat.personal-chat"
    assert topic_of_event("userChatRateLimited").name == "chat.user-events"
    assert topic_of_event("messageDispatched") is EDGE_DELIVERY
    assert topic_of_event("userTyping") is EDGE_DELIVERY


@pytest.mark.parametrize(
    ("event", "topic"),
    [
        ("messageFannedOut", "chat.inbox"),
        ("offlinePushRequested", "chat.push"),
        ("userPresenceChanged", "chat.presence"),
        ("edgeHeartbeat", "chat.user-events"),
        ("userBlocked", "chat.user-events"),
        ("userUnblocked", "chat.user-events"),
        ("groupCreated", "chat.group-events"),
        ("groupMemberJoined", "chat.group-events"),
        ("groupMemberLeft", "chat.group-events"),
        ("recordDeadLettered", "chat.dead-letter"),
        ("userTyping", "chat.edge.{edge_id}"),
        ("deviceAcked", "chat.user-events"),
        ("conversationRead", "chat.inbox"),
        ("conversationFlagsSet", "chat.inbox"),
        ("allConversationsRead", "chat.inbox"),
        ("conversationChanged", "chat.edge.{edge_id}"),
        ("readReceiptDispatched", "chat.edge.{edge_id}"),
        ("deliveryReceiptDispatched", "chat.edge.{edge_id}"),
        ("readReceiptsSet", "chat.inbox"),
    ],
)
def test_new_events_primary_topic(event: str, topic: str) -> None:
    assert topic_of_event(event).name == topic


MESSAGE = ChatMessage(
    message_id=str(uuid.uuid4()),
    conversation_id="team-1",
    seq=5,
    sender_id="alice",
    target_type="group",
    target_id="team-1",
    message_type="text",
    payload="hi",
)
KEYED: list[tuple[Event, str | None, bytes]] = [
    (MessageStored(message=MESSAGE), "alice", b"team-1"),
    (MessageFannedOut(recipient_id="bob", message=MESSAGE), "alice", b"bob"),
    (MessageDispatched(recipient_id="bob", user_seq=3, edge_id="edge-1-00ff00ff", message=MESSAGE), None, b"bob"),
    (MessageFannedOutBatch(recipient_ids=("bob", "carol"), message=MESSAGE), "alice", b"bob"),
    (
        MessageDispatchedBatch(
            recipient_ids=("carol", "bob"), user_seqs=(4, 9), edge_id="edge-1-00ff00ff", message=MESSAGE
        ),
        None,
        b"carol",
    ),
    (
        OfflinePushRequested(
            recipient_id="carol",
            user_seq=9,
            message_id=MESSAGE.message_id,
            conversation_id="team-1",
            sender_id="alice",
            message_type="text",
            preview="hi",
            unread=1,
        ),
        "alice",
        b"carol",
    ),
    (UserPresenceChanged(status="online", sessions=1, changed_at_ms=1), "dave", b"dave"),
    (
        EdgeHeartbeat(edge_id="edge-1-00ff00ff", interval_ms=5000, started_at_ms=1, sessions=0),
        "erin",
        b"edge-1-00ff00ff",
    ),
    (UserBlocked(blocked_id="mallory"), "alice", b"alice"),
    (UserUnblocked(blocked_id="mallory"), "alice", b"alice"),
    (GroupCreated(group_id="team-1", name="Team", owner_id="alice", member_ids=("alice",)), "alice", b"team-1"),
    (GroupMemberJoined(group_id="team-1", member_id="bob", added_by="alice"), "alice", b"team-1"),
    (GroupMemberLeft(group_id="team-1", member_id="bob"), "bob", b"team-1"),
    (
        RecordDeadLettered(
            source_topic="acme.chat.inbox",
            source_partition=1,
            source_offset=2,
            stage="dispatch",
            error_code="invalid_event",
            reason="bad",
        ),
        None,
        b"acme.chat.inbox",
    ),
    (
        UserTyping(conversation_id="dm:alice:bob", target_type="user", target_id="bob", state="start"),
        "alice",
        b"dm:alice:bob",
    ),
    (
        UserTyping(conversation_id="team-1", target_type="group", target_id="team-1", state="stop"),
        "bob",
        b"team-1",
    ),
    (DeviceAcked(device_id="phone-1", seq=12, received_at_ms=1), "carol", b"carol"),
    (ConversationRead(conversation_id="dm:alice:bob", read_seq=3, read_at_ms=1), "bob", b"bob"),
    (ConversationFlagsSet(conversation_id="team-1", set_at_ms=1, pinned=True), "bob", b"bob"),
    (AllConversationsRead(read_at_ms=1), "bob", b"bob"),
    (
        ConversationChanged(
            recipient_id="bob",
            edge_id="edge-1",
            conversation_id="team-1",
            last_message_id="m1",
            last_seq=3,
            read_seq=3,
            unread=0,
            pinned=False,
            muted=False,
            hidden=False,
            last_activity_ms=1,
            version=2,
        ),
        "bob",
        b"bob",
    ),
    (
        ReadReceiptDispatched(
            recipient_ids=("alice", "carol"), edge_id="edge-1", conversation_id="team-1", reader_id="bob", read_seq=3
        ),
        "alice",
        b"alice",
    ),
    (
        DeliveryReceiptDispatched(
            recipient_ids=("carol",), edge_id="edge-1", conversation_id="team-1", delivered_to="bob", delivered_seq=3
        ),
        None,
        b"carol",
    ),
    (ReadReceiptsSet(enabled=False, set_at_ms=1), "bob", b"bob"),
    # v7: changes to messages go with their conversation's sends, group administration with its group
    (
        MessageEdited(
            change_id="00000000-0000-4000-8000-000000000002",
            actor_id="alice",
            conversation_id="dm:alice:bob",
            message_id="00000000-0000-4000-8000-000000000001",
            payload="v2",
            client_msg_id="e1",
        ),
        "alice",
        b"dm:alice:bob",
    ),
    (
        MessageRecalled(
            change_id="00000000-0000-4000-8000-000000000002",
            actor_id="alice",
            conversation_id="team-1",
            message_id="00000000-0000-4000-8000-000000000001",
            client_msg_id="r1",
        ),
        "alice",
        b"team-1",
    ),
    (
        MessageDeleted(
            change_id="00000000-0000-4000-8000-000000000002",
            actor_id="bob",
            conversation_id="team-1",
            message_id="00000000-0000-4000-8000-000000000001",
            scope="me",
            client_msg_id="d1",
        ),
        "bob",
        b"team-1",
    ),
    (
        MessageReacted(
            change_id="00000000-0000-4000-8000-000000000002",
            actor_id="bob",
            conversation_id="dm:alice:bob",
            message_id="00000000-0000-4000-8000-000000000001",
            emoji="+1",
            added=True,
            client_msg_id="x1",
        ),
        "bob",
        b"dm:alice:bob",
    ),
    (GroupUpdated(group_id="team-1", updated_by="alice", name="Team"), "alice", b"team-1"),
    (GroupMemberRoleSet(group_id="team-1", member_id="bob", role="admin", set_by="alice"), None, b"team-1"),
    (GroupMemberMuted(group_id="team-1", member_id="bob", muted=True, set_by="alice"), None, b"team-1"),
    (GroupDissolved(group_id="team-1", dissolved_by="alice"), None, b"team-1"),
    (PresenceSettingsSet(show_last_seen=False, set_at_ms=1), "bob", b"bob"),
]


@pytest.mark.parametrize(("event", "user_id", "key"), KEYED, ids=[e.EVENT_NAME for e, _, _ in KEYED])
def test_key_of_every_new_event(event: Event, user_id: str | None, key: bytes) -> None:
    assert key_of(new_envelope(event, user_id=user_id)) == key


def test_every_event_type_has_a_key_rule_case() -> None:
    assert {e.EVENT_NAME for e, _, _ in KEYED} | {
        "personalChatSent",
        "userConnected",
        "userDisconnected",
        "userChatRateLimited",
    } == set(EVENT_TYPES)


def test_user_keyed_new_events_need_the_user() -> None:
    with pytest.raises(ValueError, match="userId"):
        key_of(new_envelope(UserBlocked(blocked_id="mallory")))
    with pytest.raises(ValueError, match="userId"):
        key_of(new_envelope(DeviceAcked(device_id="phone-1", seq=0, received_at_ms=0)))


def test_both_sides_typing_in_a_dm_share_the_key() -> None:
    """Typing is keyed by conversation, not by the typing user: both sides of a conversation (and
    every member of a group) land on one partition, in order."""
    alice = UserTyping(conversation_id="dm:alice:bob", target_type="user", target_id="bob", state="start")
    bob = UserTyping(conversation_id="dm:alice:bob", target_type="user", target_id="alice", state="start")
    assert key_of(new_envelope(alice, user_id="alice")) == key_of(new_envelope(bob, user_id="bob"))


def test_catalog_leaves_the_per_edge_template_out() -> None:
    catalog = TopicCatalog(Settings(topic_prefix="acme."))
    names = [t.name for t in catalog.all()]
    assert "acme.chat.edge.{edge_id}" not in names
    assert not any("{" in name for name in names)
    assert {t.spec.name for t in catalog.all()} == {s.name for s in TOPICS if not s.per_edge}
    assert [s for s in TOPICS if s.per_edge] == [EDGE_DELIVERY]
    assert len(names) == len(TOPICS) - 1
    assert all(not t.spec.per_edge for t in catalog.envelope_topics())


def test_catalog_resolves_edge_topics() -> None:
    catalog = TopicCatalog(Settings(topic_prefix="acme.", topic_partitions=3))
    topic = catalog.edge_topic("edge-1-0a1b2c3d")
    assert (topic.name, topic.partitions, topic.spec) == ("acme.chat.edge.edge-1-0a1b2c3d", 3, EDGE_DELIVERY)
    assert edge_topic_name("edge-1-0a1b2c3d") == "chat.edge.edge-1-0a1b2c3d"
    assert catalog.by_name("acme.chat.edge.edge-1-0a1b2c3d") == topic
    assert catalog.by_name("chat.edge.edge-1-0a1b2c3d") == topic
    with pytest.raises(KeyError):
        catalog.by_name("chat.edge.Not_Valid!")
    with pytest.raises(ValueError, match="edge id"):
        catalog.edge_topic("Edge 1")


def test_catalog_topics_for_event() -> None:
    catalog = TopicCatalog(Settings(topic_prefix="acme."))
    assert [t.name for t in catalog.topics_for_event("messageStored")] == [
        "acme.chat.message-stored",
        "acme.chat.room-messages",
    ]
    assert catalog.for_event("messageStored").name == "acme.chat.message-stored"


def test_catalog_applies_prefix_and_partitions() -> None:
    catalog = TopicCatalog(Settings(topic_prefix="acme.", topic_partitions=3))
    topic = catalog.for_event("personalChatSent")
    assert (topic.name, topic.partitions) == ("acme.chat.personal-chat", 3)
    assert catalog.by_name("chat.user-events").name == "acme.chat.user-events"
    assert catalog.by_name("acme.chat.user-events").spec.name == "chat.user-events"


def test_settings_read_from_chat_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_KAFKA_BOOTSTRAP_SERVERS", " kafka-1:9092,kafka-2:9092 ")
    monkeypatch.setenv("CHAT_TOPIC_PARTITIONS", "12")
    monkeypatch.setenv("CHAT_KAFKA_IDEMPOTENCE", "off")
    settings = Settings()
    assert settings.kafka_bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert settings.topic_partitions == 12
    assert settings.kafka_idempotence == "off"


def test_settings_reject_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_TOPIC_PREFIX", "no spaces")
    with pytest.raises(ValueError, match="topic_prefix"):
        Settings()
