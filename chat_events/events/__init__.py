"""Event contracts: types, validation, the JSON form. Imports no transport or codec library."""

from chat_events.events.conversations import conversation_id_of, direct_conversation_id
from chat_events.events.factory import new_envelope, utc_timestamp
from chat_events.events.json_form import envelope_from_json, envelope_to_json, event_from_json
from chat_events.events.types import (
    EVENT_TYPES,
    MESSAGE_TYPES,
    TARGET_TYPES,
    USER_EVENTS,
    Envelope,
    Event,
    PersonalChatSent,
    UserChatRateLimited,
    UserConnected,
    UserDisconnected,
)
from chat_events.events.validation import validate_envelope, validate_event

__all__ = [
    "EVENT_TYPES",
    "MESSAGE_TYPES",
    "TARGET_TYPES",
    "USER_EVENTS",
    "Envelope",
    "Event",
    "PersonalChatSent",
    "UserChatRateLimited",
    "UserConnected",
    "UserDisconnected",
    "conversation_id_of",
    "direct_conversation_id",
    "envelope_from_json",
    "envelope_to_json",
    "event_from_json",
    "new_envelope",
    "utc_timestamp",
    "validate_envelope",
    "validate_event",
]
