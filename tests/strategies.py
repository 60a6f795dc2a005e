"""Hypothesis strategies producing valid events and envelopes (shared by unit tests)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import strategies as st

from chat_events.events import (
    MESSAGE_STATUSES,
    MESSAGE_TYPES,
    SESSION_EVENTS,
    TYPING_STATES,
    ChatMessage,
    DeviceAcked,
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
    UserBlocked,
    UserChatRateLimited,
    UserConnected,
    UserDisconnected,
    UserPresenceChanged,
    UserTyping,
    UserUnblocked,
    conversation_id_of,
    direct_conversation_id,
)
from chat_events.events.conversation_events import (
    AllConversationsRead,
    ConversationChanged,
    ConversationFlagsSet,
    ConversationRead,
    DeliveryReceiptDispatched,
    ReadReceiptDispatched,
    ReadReceiptsSet,
)
from chat_events.events.factory import CONTRACT_VERSION
from chat_events.events.group_events import (
    GROUP_ROLES,
    GroupDissolved,
    GroupMemberMuted,
    GroupMemberRoleSet,
    GroupUpdated,
)
from chat_events.events.message_events import (
    DELETE_SCOPES,
    MessageDeleted,
    MessageEdited,
    MessageReacted,
    MessageRecalled,
)
from chat_events.events.presence_events import PresenceSettingsSet
from chat_events.events.types import CHANGE_KINDS, MESSAGE_KINDS, PARENT_NAMESPACE, USER_EVENTS, Event

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,40}", fullmatch=True)
uuids = st.uuids().map(str)
texts = st.text(max_size=200)
optional_texts = st.none() | st.text(min_size=1, max_size=60)
timestamps = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"
)
int32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
non_negative_int32 = st.integers(min_value=0, max_value=2**31 - 1)
non_negative_int64 = st.integers(min_value=0, max_value=2**63 - 1)
positive_int64 = st.integers(min_value=1, max_value=2**63 - 1)
edge_ids = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True)
topic_names = st.from_regex(r"[A-Za-z0-9._-]{1,60}", fullmatch=True)


TYPED_PAYLOADS = {
    "face": ['{"face_id":"thumbs_up"}', '{"face_id":7,"url":"https://cdn.example/f/7.png"}'],
    "voice": ['{"url":"https://cdn.example/v.ogg","duration":3.5}'],
    "image": ['{"url":"https://cdn.example/i.jpg","width":640,"height":480,"size":51200}'],
    "file": ['{"url":"https://cdn.example/r.pdf","name":"report.pdf","size":0}'],
    "location": ['{"lat":52.52,"lon":13.405,"name":"Berlin"}', '{"lat":-90,"lon":180}'],
    "command": ['{"code":1001}', '{"code":1002,"data":{"x":[1,2]}}'],
}
"""Valid payloads of the object message types (chat_events/events/content.py)."""


@st.composite
def typed_payloads(draw: st.DrawFn, message_type: str) -> str:
    """A payload valid for ``message_type``: text (and custom) not blank, the others their JSON."""
    if message_type in TYPED_PAYLOADS:
        return draw(st.sampled_from(TYPED_PAYLOADS[message_type]))
    return draw(st.text(min_size=1, max_size=300).filter(str.strip))


@st.composite
def personal_chat_sent(draw: st.DrawFn) -> PersonalChatSent:
    target_type = draw(st.sampled_from(["user", "group"]))
    message_type = draw(st.sampled_from(sorted(MESSAGE_TYPES)))
    event = PersonalChatSent(
        message_id=draw(uuids),
        sender_id=draw(ids),
        target_id=draw(ids),
        payload=draw(typed_payloads(message_type)),
        target_type=target_type,
        target_members=tuple(draw(st.lists(ids, max_size=5))),
        message_type=message_type,
        client_msg_id=draw(st.none() | st.text(min_size=1, max_size=40)),
        mentions=tuple(draw(st.lists(ids, max_size=3))),
        reply_to=draw(st.none() | uuids),
        kind=draw(st.sampled_from(["message", "system"])),
    )
    if draw(st.booleans()):
        from dataclasses import replace

        event = replace(event, conversation_id=conversation_id_of(event))
    return event


user_connected = st.builds(UserConnected, edge_id=st.none() | edge_ids, device_id=st.none() | ids)
user_disconnected = st.builds(
    UserDisconnected,
    reason=st.text(min_size=1, max_size=40),
    code=int32,
    forced=st.booleans(),
    edge_id=st.none() | edge_ids,
    device_id=st.none() | ids,
)
rate_limited = st.builds(
    UserChatRateLimited,
    action=st.text(min_size=1, max_size=20),
    limit=st.integers(min_value=1, max_value=2**31 - 1),
    window_ms=st.integers(min_value=1, max_value=2**63 - 1),
    retry_after_ms=st.integers(min_value=0, max_value=2**63 - 1),
)


@st.composite
def chat_messages(draw: st.DrawFn) -> ChatMessage:
    target_type = draw(st.sampled_from(["user", "group"]))
    sender_id, target_id = draw(ids), draw(ids)
    status = draw(st.sampled_from(sorted(MESSAGE_STATUSES)))
    kind = draw(st.sampled_from(sorted(MESSAGE_KINDS)))
    removed = status in ("recalled", "deleted") or kind in ("edit", "recall", "delete", "delete_for_me")
    message_id = draw(uuids)
    return ChatMessage(
        message_id=message_id,
        conversation_id=direct_conversation_id(sender_id, target_id) if target_type == "user" else target_id,
        seq=draw(positive_int64),
        sender_id=sender_id,
        target_type=target_type,
        target_id=target_id,
        message_type=draw(st.sampled_from(sorted(MESSAGE_TYPES))),
        payload=draw(st.text(min_size=0 if removed else 1, max_size=300)),
        client_msg_id=draw(st.none() | st.text(min_size=1, max_size=40)),
        mentions=tuple(draw(st.lists(ids, max_size=3))),
        sent_at_ms=draw(non_negative_int64),
        stored_at_ms=draw(non_negative_int64),
        status=status,
        kind=kind,
        relates_to=draw(uuids.filter(lambda u: u != message_id)) if kind in CHANGE_KINDS else None,
        reply_to=draw(st.none() | uuids.filter(lambda u: u != message_id)),
        edited_at_ms=draw(non_negative_int64),
        changed_seq=draw(non_negative_int64),
    )


message_stored = st.builds(MessageStored, message=chat_messages())
message_fanned_out = st.builds(MessageFannedOut, recipient_id=ids, message=chat_messages())
message_dispatched = st.builds(
    MessageDispatched, recipient_id=ids, user_seq=positive_int64, edge_id=edge_ids, message=chat_messages()
)
recipient_lists = st.lists(ids, min_size=1, max_size=8, unique=True).map(tuple)
message_fanned_out_batch = st.builds(MessageFannedOutBatch, recipient_ids=recipient_lists, message=chat_messages())


@st.composite
def message_dispatched_batch(draw: st.DrawFn) -> MessageDispatchedBatch:
    recipients = draw(recipient_lists)
    seqs = tuple(draw(st.lists(positive_int64, min_size=len(recipients), max_size=len(recipients))))
    return MessageDispatchedBatch(
        recipient_ids=recipients, user_seqs=seqs, edge_id=draw(edge_ids), message=draw(chat_messages())
    )


@st.composite
def offline_push_requested(draw: st.DrawFn) -> OfflinePushRequested:
    message = draw(chat_messages())
    return OfflinePushRequested(
        recipient_id=draw(ids),
        user_seq=draw(positive_int64),
        message_id=message.message_id,
        conversation_id=message.conversation_id,
        sender_id=message.sender_id,
        message_type=message.message_type,
        preview=draw(st.text(max_size=200)),
        unread=draw(non_negative_int32),
    )


@st.composite
def presence_changed(draw: st.DrawFn) -> UserPresenceChanged:
    online = draw(st.booleans())
    return UserPresenceChanged(
        status="online" if online else "offline",
        sessions=draw(st.integers(min_value=1, max_value=2**31 - 1)) if online else 0,
        changed_at_ms=draw(non_negative_int64),
        show_last_seen=draw(st.booleans()),
    )


edge_heartbeat = st.builds(
    EdgeHeartbeat,
    edge_id=edge_ids,
    interval_ms=st.integers(min_value=1, max_value=2**31 - 1),
    started_at_ms=non_negative_int64,
    sessions=non_negative_int32,
    stopping=st.booleans(),
)
user_blocked = st.builds(UserBlocked, blocked_id=ids)
user_unblocked = st.builds(UserUnblocked, blocked_id=ids)
group_created = st.builds(
    GroupCreated,
    group_id=ids,
    name=st.text(min_size=1, max_size=200),
    owner_id=ids,
    member_ids=st.lists(ids, max_size=5).map(tuple),
    avatar_url=st.just("") | st.just("https://example.com/g.png"),
    description=st.text(max_size=100),
)
group_member_joined = st.builds(GroupMemberJoined, group_id=ids, member_id=ids, added_by=st.none() | ids)
group_member_left = st.builds(GroupMemberLeft, group_id=ids, member_id=ids, removed_by=st.none() | ids)
record_dead_lettered = st.builds(
    RecordDeadLettered,
    source_topic=topic_names,
    source_partition=non_negative_int32,
    source_offset=non_negative_int64,
    stage=st.text(min_size=1, max_size=30),
    error_code=st.text(min_size=1, max_size=30),
    reason=st.text(min_size=1, max_size=200),
    key=st.none() | st.binary(max_size=50),
    value=st.binary(max_size=300),
)


@st.composite
def user_typing(draw: st.DrawFn) -> UserTyping:
    """A typing event; for a 1:1 target its ``conversation_id`` is re-derived by :func:`envelopes`
    from the envelope's ``userId`` (the typing user)."""
    target_type = draw(st.sampled_from(["user", "group"]))
    target_id = draw(ids)
    return UserTyping(
        conversation_id=direct_conversation_id("typist", target_id) if target_type == "user" else target_id,
        target_type=target_type,
        target_id=target_id,
        state=draw(st.sampled_from(sorted(TYPING_STATES))),
        recipient_ids=tuple(draw(st.lists(ids, max_size=5))),
    )


device_acked = st.builds(
    DeviceAcked,
    device_id=ids,
    seq=non_negative_int64,
    received_at_ms=non_negative_int64,
)

conversation_ids = ids | st.tuples(ids, ids).filter(lambda p: p[0] != p[1]).map(lambda p: direct_conversation_id(*p))
optional_bools = st.none() | st.booleans()
conversation_read = st.builds(
    ConversationRead,
    conversation_id=conversation_ids,
    read_seq=non_negative_int64,
    read_at_ms=non_negative_int64,
    device_id=st.none() | ids,
)
conversation_flags_set = st.builds(
    ConversationFlagsSet,
    conversation_id=conversation_ids,
    set_at_ms=non_negative_int64,
    pinned=st.just(True) | st.just(False),
    muted=optional_bools,
    hidden=optional_bools,
)
all_conversations_read = st.builds(AllConversationsRead, read_at_ms=non_negative_int64)
conversation_changed = st.builds(
    ConversationChanged,
    recipient_id=ids,
    edge_id=edge_ids,
    conversation_id=conversation_ids,
    last_message_id=uuids,
    last_seq=non_negative_int64,
    read_seq=non_negative_int64,
    unread=non_negative_int64,
    pinned=st.booleans(),
    muted=st.booleans(),
    hidden=st.booleans(),
    last_activity_ms=non_negative_int64,
    version=non_negative_int64,
)
read_receipt_dispatched = st.builds(
    ReadReceiptDispatched,
    recipient_ids=st.lists(ids, min_size=1, max_size=5).map(tuple),
    edge_id=edge_ids,
    conversation_id=conversation_ids,
    reader_id=ids,
    read_seq=non_negative_int64,
)
delivery_receipt_dispatched = st.builds(
    DeliveryReceiptDispatched,
    recipient_ids=st.lists(ids, min_size=1, max_size=5).map(tuple),
    edge_id=edge_ids,
    conversation_id=conversation_ids,
    delivered_to=ids,
    delivered_seq=positive_int64,
)
read_receipts_set = st.builds(ReadReceiptsSet, enabled=st.booleans(), set_at_ms=non_negative_int64)

emojis = st.sampled_from(["\U0001f44d", "\u2764\ufe0f", "\U0001f602", "\U0001f44d\U0001f3fd", ":party:"])
client_msg_ids = st.text(min_size=1, max_size=40)


@st.composite
def message_changes(
    draw: st.DrawFn, kind: str | None = None
) -> MessageEdited | MessageRecalled | MessageDeleted | MessageReacted:
    """One of the v7 change events (``kind``: edit, recall, delete, react; any when None), on a
    conversation, with distinct change and message ids."""
    change_id, message_id = draw(st.lists(uuids, min_size=2, max_size=2, unique=True))
    common = {
        "change_id": change_id,
        "actor_id": draw(ids),
        "conversation_id": draw(conversation_ids),
        "message_id": message_id,
        "client_msg_id": draw(client_msg_ids),
    }
    kind = kind or draw(st.sampled_from(["edit", "recall", "delete", "react"]))
    if kind == "edit":
        return MessageEdited(
            **common, payload=draw(st.text(min_size=1, max_size=100)), mentions=tuple(draw(st.lists(ids, max_size=3)))
        )
    if kind == "recall":
        return MessageRecalled(**common)
    if kind == "delete":
        return MessageDeleted(**common, scope=draw(st.sampled_from(sorted(DELETE_SCOPES))))
    return MessageReacted(**common, emoji=draw(emojis), added=draw(st.booleans()))


group_updated = st.builds(
    GroupUpdated,
    group_id=ids,
    updated_by=ids,
    name=st.text(min_size=1, max_size=60),  # at least one field is set
    avatar_url=st.none() | st.just("") | st.just("https://example.com/a.png"),
    description=st.none() | st.text(max_size=100),
)
group_member_role_set = st.builds(
    GroupMemberRoleSet, group_id=ids, member_id=ids, role=st.sampled_from(sorted(GROUP_ROLES)), set_by=ids
)
group_member_muted = st.builds(
    GroupMemberMuted, group_id=ids, member_id=ids, muted=st.booleans(), set_by=ids, until_ms=non_negative_int64
)
group_dissolved = st.builds(GroupDissolved, group_id=ids, dissolved_by=ids)
presence_settings_set = st.builds(PresenceSettingsSet, show_last_seen=st.booleans(), set_at_ms=non_negative_int64)

events: st.SearchStrategy[Event] = st.one_of(
    personal_chat_sent(),
    user_connected,
    user_disconnected,
    rate_limited,
    message_stored,
    message_fanned_out,
    message_dispatched,
    offline_push_requested(),
    presence_changed(),
    edge_heartbeat,
    user_blocked,
    user_unblocked,
    group_created,
    group_member_joined,
    group_member_left,
    record_dead_lettered,
    user_typing(),
    device_acked,
    message_fanned_out_batch,
    message_dispatched_batch(),
    conversation_read,
    conversation_flags_set,
    all_conversations_read,
    conversation_changed,
    read_receipt_dispatched,
    delivery_receipt_dispatched,
    read_receipts_set,
    message_changes("edit"),
    message_changes("recall"),
    message_changes("delete"),
    message_changes("react"),
    group_updated,
    group_member_role_set,
    group_member_muted,
    group_dissolved,
    presence_settings_set,
)


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    event = draw(events)
    user_id = draw(ids) if event.EVENT_NAME in USER_EVENTS else draw(st.none() | ids)
    if isinstance(event, UserBlocked | UserUnblocked):
        user_id = draw(ids.filter(lambda i: i != event.blocked_id))
    if isinstance(event, UserTyping) and event.target_type == "user":
        assert user_id is not None
        event = replace(event, conversation_id=direct_conversation_id(user_id, event.target_id))
    required_session = event.EVENT_NAME in SESSION_EVENTS
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
        session_id=draw(st.text(min_size=1, max_size=60)) if required_session else draw(optional_texts),
        span_context=draw(optional_texts),
    )
