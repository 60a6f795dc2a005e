"""Contract checks of the conversation-list events (:mod:`chat_events.events.conversation_events`).

Split from :mod:`chat_events.events.validation` (which calls :func:`check_conversation_event`
for these events and owns the field checks used here)."""

from __future__ import annotations

from chat_events.errors import EventValidationError
from chat_events.events.conversation_events import (
    AllConversationsRead,
    ConversationChanged,
    ConversationFlagsSet,
    ConversationRead,
    DeliveryReceiptDispatched,
    ReadReceiptDispatched,
    ReadReceiptsSet,
)
from chat_events.events.validation import (
    INT64,
    MAX_MEMBERS,
    check_bool,
    check_conversation_id,
    check_edge_id,
    check_id,
    check_id_list,
    check_int,
    check_optional_id,
)

ConversationEvent = (
    ConversationRead
    | ConversationFlagsSet
    | AllConversationsRead
    | ConversationChanged
    | ReadReceiptDispatched
    | DeliveryReceiptDispatched
    | ReadReceiptsSet
)


def _check_optional_bool(path: str, value: object) -> None:
    if value is not None:
        check_bool(path, value)


def check_conversation_event(path: str, event: ConversationEvent) -> None:
    """Raise :class:`EventValidationError` unless ``event`` satisfies its contract."""
    if isinstance(event, ConversationRead):
        check_conversation_id(f"{path}.conversation_id", event.conversation_id)
        check_int(f"{path}.read_seq", event.read_seq, bounds=INT64, minimum=0)
        check_int(f"{path}.read_at_ms", event.read_at_ms, bounds=INT64, minimum=0)
        check_optional_id(f"{path}.device_id", event.device_id)
    elif isinstance(event, ConversationFlagsSet):
        check_conversation_id(f"{path}.conversation_id", event.conversation_id)
        check_int(f"{path}.set_at_ms", event.set_at_ms, bounds=INT64, minimum=0)
        for name in ("pinned", "muted", "hidden"):
            _check_optional_bool(f"{path}.{name}", getattr(event, name))
        check_int(f"{path}.up_to_user_seq", event.up_to_user_seq, bounds=INT64, minimum=0)
        if event.pinned is None and event.muted is None and event.hidden is None:
            raise EventValidationError(path, "sets no flag (give pinned, muted or hidden)")
    elif isinstance(event, ReadReceiptsSet):
        check_bool(f"{path}.enabled", event.enabled)
        check_int(f"{path}.set_at_ms", event.set_at_ms, bounds=INT64, minimum=0)
    elif isinstance(event, AllConversationsRead):
        check_int(f"{path}.read_at_ms", event.read_at_ms, bounds=INT64, minimum=0)
        check_int(f"{path}.up_to_user_seq", event.up_to_user_seq, bounds=INT64, minimum=0)
    elif isinstance(event, ConversationChanged):
        check_id(f"{path}.recipient_id", event.recipient_id)
        check_edge_id(f"{path}.edge_id", event.edge_id)
        check_conversation_id(f"{path}.conversation_id", event.conversation_id)
        for name in ("last_seq", "read_seq", "unread", "last_activity_ms", "version", "unread_mentions"):
            check_int(f"{path}.{name}", getattr(event, name), bounds=INT64, minimum=0)
        for name in ("pinned", "muted", "hidden"):
            check_bool(f"{path}.{name}", getattr(event, name))
    elif isinstance(event, ReadReceiptDispatched | DeliveryReceiptDispatched):
        check_id_list(f"{path}.recipient_ids", event.recipient_ids, max_items=MAX_MEMBERS)
        if not event.recipient_ids:
            raise EventValidationError(f"{path}.recipient_ids", "is empty")
        check_edge_id(f"{path}.edge_id", event.edge_id)
        check_conversation_id(f"{path}.conversation_id", event.conversation_id)
        if isinstance(event, ReadReceiptDispatched):
            check_id(f"{path}.reader_id", event.reader_id)
            check_int(f"{path}.read_seq", event.read_seq, bounds=INT64, minimum=0)
        else:
            check_id(f"{path}.delivered_to", event.delivered_to)
            check_int(f"{path}.delivered_seq", event.delivered_seq, bounds=INT64, minimum=1)
