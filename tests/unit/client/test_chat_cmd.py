"""The terminal chat's pure helpers."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

from chat_events.api.protocol import Code
from chat_events.cli.chat_cmd import conversation_of, default_url, group_refusal, target_refusal
from chat_events.cli.chat_view import format_message
from chat_events.cli.main import build_parser


def test_conversation_ids() -> None:
    assert conversation_of("bob", "user", "alice") == "dm:alice:bob"
    assert conversation_of("bob", "group", "team") == "team"


def test_default_url_from_settings() -> None:
    assert default_url(SimpleNamespace()) == "http://127.0.0.1:8000"  # type: ignore[arg-type]
    assert default_url(SimpleNamespace(edge_host="0.0.0.0", edge_port=9000)) == "http://127.0.0.1:9000"  # type: ignore[arg-type]
    assert default_url(SimpleNamespace(edge_host="::1", edge_port=1)) == "http://[::1]:1"  # type: ignore[arg-type]


def test_format_message() -> None:
    sent = int(datetime(2024, 5, 6, 7, 8, 9).timestamp() * 1000)
    text = {"sender_id": "bob", "content": "hi", "sent_at_ms": sent, "message_type": "text"}
    assert format_message(text) == "[07:08:09] bob: hi"
    image = {**text, "message_type": "image", "content": '{"url":"x"}'}
    assert format_message(image) == '[07:08:09] bob: <image> {"url":"x"}'
    assert format_message({**text, "status": "edited"}) == "[07:08:09] bob: hi (edited)"
    assert format_message({**text, "status": "recalled", "content": ""}) == "[07:08:09] bob: <message recalled>"
    assert format_message({**text, "kind": "edit", "content": "hey"}) == "[07:08:09] * bob edited a message: hey"
    assert format_message({**text, "kind": "reaction_add", "content": "+1"}) == "[07:08:09] * bob reacted +1"
    assert format_message({**text, "kind": "system", "content": '{"event":"x"}'}) == '[07:08:09] * {"event":"x"}'


def test_the_command_is_registered() -> None:
    args = build_parser().parse_args(["chat", "--as", "alice", "--group", "team"])
    assert (args.user, args.group, args.to, args.url, args.history) == ("alice", "team", None, None, 20)


def test_chatting_with_yourself_is_refused_at_start() -> None:
    assert target_refusal("alice", "bob") is None
    assert target_refusal("alice", None) is None
    refusal = target_refusal("alice", "alice")
    assert refusal is not None and "that is you" in refusal


def test_a_group_that_cannot_be_chatted_in_says_why_and_what_to_do() -> None:
    stranger = group_refusal(Code.FORBIDDEN, "carol", "team", "")  # the edge does not say which
    assert stranger.startswith("no group team, or carol is not a member of it")
    assert "chat-events group add team carol" in stranger and "chat-events group create team --owner carol" in stranger
    assert "UNAVAILABLE" in group_refusal(Code.UNAVAILABLE, "alice", "team", "UNAVAILABLE (13): down")
