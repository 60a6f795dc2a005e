"""Hypothesis strategies producing valid events and envelopes (shared by unit tests)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from chat_events.events import (
    MESSAGE_TYPES,
    Envelope,
    PersonalChatSent,
    UserChatRateLimited,
    UserConnected,
    UserDisconnected,
    conversation_id_of,
)
from chat_events.events.factory import CONTRACT_VERSION
from chat_events.events.types import PARENT_NAMESPACE, USER_EVENTS, Event

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,40}", fullmatch=True)
uuids = st.uuids().map(str)
texts = st.text(max_size=200)
optional_texts = st.none() | st.text(min_size=1, max_size=60)
timestamps = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"
)
int32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)


@st.composite
def personal_chat_sent(draw: st.DrawFn) -> PersonalChatSent:
    target_type = draw(st.sampled_from(["user", "group"]))
    event = PersonalChatSent(
        message_id=draw(uuids),
        sender_id=draw(ids),
        target_id=draw(ids),
        payload=draw(st.text(min_size=1, max_size=300)),
        target_type=target_type,
        target_members=tuple(draw(st.lists(ids, max_size=5))),
        message_type=draw(st.sampled_from(sorted(MESSAGE_TYPES))),
        client_msg_id=draw(st.none() | st.text(min_size=1, max_size=40)),
        mentions=tuple(draw(st.lists(ids, max_size=3))),
    )
    if draw(st.booleans()):
        from dataclasses import replace

        event = replace(event, conversation_id=conversation_id_of(event))
    return event


user_connected = st.builds(UserConnected, edge_id=st.none() | ids, device_id=optional_texts)
user_disconnected = st.builds(
    UserDisconnected,
    reason=st.text(min_size=1, max_size=40),
    code=int32,
    forced=st.booleans(),
    edge_id=st.none() | ids,
    device_id=optional_texts,
)
rate_limited = st.builds(
    UserChatRateLimited,
    action=st.text(min_size=1, max_size=20),
    limit=st.integers(min_value=1, max_value=2**31 - 1),
    window_ms=st.integers(min_value=1, max_value=2**63 - 1),
    retry_after_ms=st.integers(min_value=0, max_value=2**63 - 1),
)
events: st.SearchStrategy[Event] = st.one_of(personal_chat_sent(), user_connected, user_disconnected, rate_limited)


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    event = draw(events)
    user_id = draw(ids) if event.EVENT_NAME in USER_EVENTS else draw(st.none() | ids)
    return Envelope(
        payload=event,
        id=draw(uuids),
        version=CONTRACT_VERSION,
        name=event.EVENT_NAME,
        namespace=event.NAMESPACE,
        timestamp=draw(timestamps),
        parent_namespace=draw(st.none() | st.just(PARENT_NAMESPACE)),
        client_id=draw(optional_texts),
        user_id=user_id,
        trace_id=draw(st.none() | st.uuids().map(lambda u: u.hex)),
        session_id=draw(optional_texts),
        span_context=draw(optional_texts),
    )
