"""The terminal chat's pure helpers."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

from chat_events.cli.chat_cmd import conversation_of, default_url, format_message
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


def test_the_command_is_registered() -> None:
    args = build_parser().parse_args(["chat", "--as", "alice", "--group", "team"])
    assert (args.user, args.group, args.to, args.url, args.history) == ("alice", "team", None, None, 20)
