"""Contract checks of the schema-v7 events: changes to messages
(:mod:`chat_events.events.message_events`), group administration
(:mod:`chat_events.events.group_events`) and presence settings; and of the fields v7 added to
``personalChatSent`` and ``ChatMessage``.

Split from :mod:`chat_events.events.validation`, which calls :func:`check_v7_event` and
:func:`check_v7_message_fields` and owns the field checks used here."""

from __future__ import annotations

from typing import Any

from chat_events.errors import EventValidationError
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
from chat_events.events.types import CHANGE_KINDS, MESSAGE_KINDS
from chat_events.events.validation import (
    INT64,
    MAX_CLIENT_MSG_ID,
    MAX_GROUP_NAME,
    MAX_MENTIONS,
    check_bool,
    check_conversation_id,
    check_enum,
    check_id,
    check_id_list,
    check_int,
    check_payload_text,
    check_str,
    check_uuid,
)

MAX_EMOJI_BYTES = 64
"""A reaction is one emoji (possibly a ZWJ sequence with modifiers) or a short shortcode."""
MAX_AVATAR_URL = 2048
MAX_DESCRIPTION = 2000

V7Event = (
    MessageEdited
    | MessageRecalled
    | MessageDeleted
    | MessageReacted
    | GroupUpdated
    | GroupMemberRoleSet
    | GroupMemberMuted
    | GroupDissolved
    | PresenceSettingsSet
)


def check_emoji(path: str, value: Any) -> None:
    check_str(path, value, max_len=MAX_EMOJI_BYTES)
    if len(value.encode("utf-8")) > MAX_EMOJI_BYTES or not value.strip() or any(c.isspace() for c in value):
        raise EventValidationError(path, f"must be one emoji (at most {MAX_EMOJI_BYTES} UTF-8 bytes, no spaces)")


def check_avatar_url(path: str, value: Any) -> None:
    check_str(path, value, max_len=MAX_AVATAR_URL, allow_empty=True)
    if value and not value.startswith(("https://", "http://")):
        raise EventValidationError(path, "must be an http(s) URL or empty")


def _check_optional(path: str, value: Any, check: Any) -> None:
    if value is not None:
        check(path, value)


def _check_change(path: str, event: MessageEdited | MessageRecalled | MessageDeleted | MessageReacted) -> None:
    check_uuid(f"{path}.change_id", event.change_id)
    check_id(f"{path}.actor_id", event.actor_id)
    check_conversation_id(f"{path}.conversation_id", event.conversation_id)
    check_uuid(f"{path}.message_id", event.message_id)
    check_str(f"{path}.client_msg_id", event.client_msg_id, max_len=MAX_CLIENT_MSG_ID)
    if event.change_id == event.message_id:
        raise EventValidationError(f"{path}.change_id", "must differ from message_id")


def check_v7_event(path: str, event: V7Event, max_payload_bytes: int) -> None:
    """Raise :class:`EventValidationError` unless ``event`` satisfies its contract."""
    if isinstance(event, MessageEdited | MessageRecalled | MessageDeleted | MessageReacted):
        _check_change(path, event)
        if isinstance(event, MessageEdited):
            check_payload_text(f"{path}.payload", event.payload, max_payload_bytes)
            check_id_list(f"{path}.mentions", event.mentions, max_items=MAX_MENTIONS)
        elif isinstance(event, MessageDeleted):
            check_enum(f"{path}.scope", event.scope, DELETE_SCOPES)
        elif isinstance(event, MessageReacted):
            check_emoji(f"{path}.emoji", event.emoji)
            check_bool(f"{path}.added", event.added)
    elif isinstance(event, GroupUpdated):
        check_id(f"{path}.group_id", event.group_id)
        check_id(f"{path}.updated_by", event.updated_by)
        _check_optional(f"{path}.name", event.name, lambda p, v: check_str(p, v, max_len=MAX_GROUP_NAME))
        _check_optional(f"{path}.avatar_url", event.avatar_url, check_avatar_url)
        _check_optional(
            f"{path}.description",
            event.description,
            lambda p, v: check_str(p, v, max_len=MAX_DESCRIPTION, allow_empty=True),
        )
        if event.name is None and event.avatar_url is None and event.description is None:
            raise EventValidationError(path, "changes nothing (give name, avatar_url or description)")
    elif isinstance(event, GroupMemberRoleSet):
        check_id(f"{path}.group_id", event.group_id)
        check_id(f"{path}.member_id", event.member_id)
        check_enum(f"{path}.role", event.role, GROUP_ROLES)
        check_id(f"{path}.set_by", event.set_by)
    elif isinstance(event, GroupMemberMuted):
        check_id(f"{path}.group_id", event.group_id)
        check_id(f"{path}.member_id", event.member_id)
        check_bool(f"{path}.muted", event.muted)
        check_id(f"{path}.set_by", event.set_by)
        check_int(f"{path}.until_ms", event.until_ms, bounds=INT64, minimum=0)
    elif isinstance(event, GroupDissolved):
        check_id(f"{path}.group_id", event.group_id)
        check_id(f"{path}.dissolved_by", event.dissolved_by)
    else:
        check_bool(f"{path}.show_last_seen", event.show_last_seen)
        check_int(f"{path}.set_at_ms", event.set_at_ms, bounds=INT64, minimum=0)


def check_v7_message_fields(path: str, message: Any) -> None:
    """The v7 fields of a stored message (``ChatMessage``): a change entry names the message it
    changes; any message may answer one (``reply_to``), never itself."""
    check_enum(f"{path}.kind", message.kind, MESSAGE_KINDS)
    if message.kind in CHANGE_KINDS:
        check_uuid(f"{path}.relates_to", message.relates_to)
    elif message.relates_to is not None:
        raise EventValidationError(f"{path}.relates_to", f"must be null for kind {message.kind!r}")
    _check_optional(f"{path}.reply_to", message.reply_to, check_uuid)
    if message.reply_to is not None and message.reply_to == message.message_id:
        raise EventValidationError(f"{path}.reply_to", "cannot be the message itself")
    check_int(f"{path}.edited_at_ms", message.edited_at_ms, bounds=INT64, minimum=0)
    check_int(f"{path}.changed_seq", message.changed_seq, bounds=INT64, minimum=0)
