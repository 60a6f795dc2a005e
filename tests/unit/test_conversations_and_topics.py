from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat_events.events import PersonalChatSent, direct_conversation_id, new_envelope
from chat_events.events.conversations import conversation_id_of
from chat_events.events.types import UserConnected
from chat_events.settings import Settings
from chat_events.topics import TOPICS, TopicCatalog, key_of, topic_of_event

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


def test_every_event_has_exactly_one_topic() -> None:
    names = [event for spec in TOPICS for event in spec.events]
    assert len(names) == len(set(names))
    assert topic_of_event("personalChatSent").name == "chat.personal-chat"
    assert topic_of_event("userChatRateLimited").name == "chat.user-events"


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
