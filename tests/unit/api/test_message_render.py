"""How stored messages are shown to one reader (api/message_render.shape): an edit entry shows
the message's current text, nothing once recalled; hidden-for-me stubs; others' hides as
placeholders; reactions."""

from __future__ import annotations

from dataclasses import replace

from chat_events.api.message_render import shape
from chat_events.events.types import ChatMessage

MESSAGE = ChatMessage(
    message_id="00000000-0000-4000-8000-000000000001",
    conversation_id="dm:alice:bob",
    seq=1,
    sender_id="alice",
    target_type="user",
    target_id="bob",
    message_type="text",
    payload="v2",
    status="edited",
    changed_seq=3,
)
EDIT = replace(
    MESSAGE,
    message_id="00000000-0000-4000-8000-000000000002",
    seq=2,
    payload="",
    status="normal",
    kind="edit",
    relates_to=MESSAGE.message_id,
    changed_seq=0,
)


def _shape(message: ChatMessage, reader: str = "bob", **kwargs: object) -> dict[str, object]:
    args: dict[str, object] = {"related": {MESSAGE.message_id: MESSAGE}, "reactions": {}, "hidden": frozenset()}
    args.update(kwargs)
    return shape(message, reader, **args)  # type: ignore[arg-type]


def test_an_edit_entry_shows_the_current_text_and_nothing_once_recalled() -> None:
    assert _shape(EDIT)["content"] == "v2"
    recalled = replace(MESSAGE, payload="", status="recalled")
    assert _shape(EDIT, related={MESSAGE.message_id: recalled})["content"] == ""
    assert _shape(EDIT, related={})["content"] == ""


def test_a_message_hidden_for_the_reader_is_a_stub() -> None:
    view = _shape(MESSAGE, hidden=frozenset({MESSAGE.message_id}))
    assert (view["content"], view["hidden"], view["mentions"]) == ("", True, [])
    assert "hidden" not in _shape(MESSAGE)


def test_someone_elses_delete_for_me_is_a_placeholder_naming_nothing() -> None:
    mine = replace(EDIT, kind="delete_for_me", sender_id="bob", target_id="alice")
    assert _shape(mine, reader="bob")["relates_to"] == MESSAGE.message_id
    theirs = _shape(mine, reader="alice")
    assert theirs["relates_to"] is None and theirs["hidden"] is True


def test_messages_carry_their_reactions() -> None:
    view = _shape(MESSAGE, reactions={MESSAGE.message_id: {"\U0001f44d": ("bob", "carol")}})
    assert view["reactions"] == [{"emoji": "\U0001f44d", "count": 2, "user_ids": ["bob", "carol"]}]
