"""Frame parsing: every bad input is refused with its code, naming the field."""

from __future__ import annotations

import orjson
import pytest

from chat_events.api.protocol import (
    Close,
    Code,
    ConversationSet,
    ProtocolError,
    Read,
    ReadAll,
    Send,
    SetSettings,
    SignIn,
    Sync,
    header_device_id,
    nested_deeper,
    parse_frame,
)


def parse(obj: object, max_payload: int = 100) -> object:
    text = obj if isinstance(obj, str) else orjson.dumps(obj).decode()
    return parse_frame(text, max_payload_bytes=max_payload).request


def refused(obj: object, max_payload: int = 100) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse(obj, max_payload)
    return info.value


def test_a_valid_send_parses_with_defaults() -> None:
    send = parse(
        {
            "type": "send",
            "request_id": 1,
            "data": {"target_type": "user", "target_id": "bob", "content": "hi", "client_msg_id": "n1"},
        }
    )
    assert send == Send("user", "bob", "text", "hi", "n1", ())


def test_structured_content_is_compact_json_for_non_text_types() -> None:
    send = parse(
        {
            "type": "send",
            "data": {
                "target_type": "group",
                "target_id": "g1",
                "message_type": "image",
                "content": {"height": 1, "url": "https://cdn.example/u.png", "width": 2, "size": None},
                "client_msg_id": "n",
            },
        }
    )
    assert isinstance(send, Send)  # the fields in their documented order, null optionals dropped
    assert send.content == '{"url":"https://cdn.example/u.png","width":2,"height":1}'


@pytest.mark.parametrize(
    ("frame", "code", "field"),
    [
        ("{not json", Code.BAD_FRAME, None),
        ("[1, 2]", Code.BAD_FRAME, None),
        ({"type": "launch"}, Code.UNKNOWN_TYPE, None),
        ({"type": 5}, Code.UNKNOWN_TYPE, None),
        ({"type": "sync", "request_id": True}, Code.INVALID_FIELD, "request_id"),
        ({"type": "sync", "data": []}, Code.INVALID_FIELD, "data"),
        ({"type": "sync", "data": {"seq": "3"}}, Code.INVALID_FIELD, "seq"),
        ({"type": "sync", "data": {"seq": -1}}, Code.INVALID_FIELD, "seq"),
        ({"type": "sync", "data": {"limit": 100000}}, Code.INVALID_FIELD, "limit"),
        ({"type": "ack", "data": {}}, Code.INVALID_FIELD, "seq"),
        ({"type": "sign_in", "data": {"token": "t"}}, Code.INVALID_FIELD, "device_id"),
        (
            {"type": "send", "data": {"target_type": "room", "target_id": "x", "content": "c", "client_msg_id": "n"}},
            Code.INVALID_FIELD,
            "target_type",
        ),
        (
            {"type": "send", "data": {"target_type": "user", "target_id": "a:b", "content": "c", "client_msg_id": "n"}},
            Code.INVALID_FIELD,
            "target_id",
        ),
        (
            {"type": "send", "data": {"target_type": "user", "target_id": "b", "content": 5, "client_msg_id": "n"}},
            Code.INVALID_FIELD,
            "content",
        ),
        (
            {
                "type": "send",
                "data": {"target_type": "user", "target_id": "b", "content": {"a": 1}, "client_msg_id": "n"},
            },
            Code.INVALID_FIELD,
            "content",
        ),
        (
            {"type": "send", "data": {"target_type": "user", "target_id": "b", "content": "  ", "client_msg_id": "n"}},
            Code.INVALID_FIELD,
            "content",
        ),
        (
            {"type": "send", "data": {"target_type": "user", "target_id": "b", "content": "c"}},
            Code.INVALID_FIELD,
            "client_msg_id",
        ),
        (
            {
                "type": "send",
                "data": {"target_type": "user", "target_id": "b", "content": "x" * 101, "client_msg_id": "n"},
            },
            Code.PAYLOAD_TOO_LARGE,
            "content",
        ),
        (
            {
                "type": "send",
                "data": {
                    "target_type": "user",
                    "target_id": "b",
                    "content": "c",
                    "client_msg_id": "n",
                    "mentions": "bob",
                },
            },
            Code.INVALID_FIELD,
            "mentions",
        ),
        (
            {"type": "typing", "data": {"target_type": "user", "target_id": "b", "state": "maybe"}},
            Code.INVALID_FIELD,
            "state",
        ),
    ],
)
def test_bad_frames_are_refused_with_a_code_and_the_field(frame: object, code: Code, field: str | None) -> None:
    error = refused(frame)
    assert error.code == code
    if field is not None:
        assert error.data["field"] == field


def test_the_request_id_is_echoed_on_refusals() -> None:
    error = refused({"type": "sync", "request_id": "r-7", "data": {"seq": "x"}})
    assert error.request_id == "r-7" and error.frame_type == "sync"


def test_sign_in_and_sync_defaults() -> None:
    assert parse({"type": "sign_in", "data": {"token": "t", "device_id": "d"}}) == SignIn("t", "d")
    assert parse({"type": "sync"}) == Sync(None, 100)  # the device's stored progress
    assert parse({"type": "sync", "data": {"seq": None}}) == Sync(None, 100)


def _content_frame(levels: int) -> str:
    """A send whose object content nests ``levels`` deep (orjson.dumps cannot write that deep:
    the text is built by hand)."""
    deep = '{"a":' * (levels - 1) + "{}" + "}" * (levels - 1)
    data = {"target_type": "user", "target_id": "b", "message_type": "custom", "content": "@@", "client_msg_id": "n"}
    return '{"type": "send", "request_id": 1, "data": ' + orjson.dumps(data).decode().replace('"@@"', deep) + "}"


@pytest.mark.parametrize("levels", [33, 255, 1000])
def test_deeply_nested_content_is_a_field_error_not_internal(levels: int) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_frame(_content_frame(levels), max_payload_bytes=1_000_000)
    assert info.value.code == Code.INVALID_FIELD and info.value.data["field"] == "content"
    assert "nested deeper than 32 levels" in info.value.message


def test_content_at_the_depth_limit_parses() -> None:
    request = parse_frame(_content_frame(32), max_payload_bytes=1_000_000).request
    assert isinstance(request, Send) and request.content.count("{") == 32


def test_nested_deeper_counts_objects_and_arrays() -> None:
    assert not nested_deeper("x", 0) and not nested_deeper({}, 1) and nested_deeper({}, 0)
    assert nested_deeper({"a": [{"b": 1}]}, 2) and not nested_deeper({"a": [{"b": 1}]}, 3)
    assert nested_deeper([[[[[]]]]], 4) and not nested_deeper([1, [2], {"x": [3]}], 3)


@pytest.mark.parametrize("device", ["../../x/<script>", "a b", "-lead", "x:y", "d" * 129])
def test_device_ids_follow_the_id_rules(device: str) -> None:
    error = refused({"type": "sign_in", "request_id": 2, "data": {"token": "t", "device_id": device}})
    assert error.code == Code.INVALID_FIELD and error.data["field"] == "device_id" and error.request_id == 2
    with pytest.raises(ProtocolError) as header:
        header_device_id(device)
    assert header.value.code == Code.INVALID_FIELD and header.value.close == Close.POLICY
    assert header.value.data["field"] == "device_id" and header.value.frame_type == "sign_in"


def test_header_device_id_defaults_and_accepts_ids() -> None:
    assert header_device_id(None) == header_device_id("") == "default"
    assert header_device_id("phone-1") == "phone-1" and header_device_id("d" * 128) == "d" * 128


def test_conversation_list_frames() -> None:
    assert parse({"type": "read", "data": {"conversation_id": "dm:a:b", "seq": 4}}) == Read("dm:a:b", 4)
    assert parse({"type": "conversation_set", "data": {"conversation_id": "g1", "muted": True}}) == ConversationSet(
        ("g1",), None, True, None
    )
    assert parse({"type": "conversation_set", "data": {"conversation_ids": ["g1", "g2"], "hidden": True}}) == (
        ConversationSet(("g1", "g2"), None, None, True)
    )
    assert parse({"type": "read_all"}) == ReadAll()
    assert parse({"type": "settings", "data": {"read_receipts": False}}) == SetSettings(False)
    error = refused({"type": "settings", "data": {}})
    assert (error.code, error.data["field"]) == (Code.INVALID_FIELD, "read_receipts")
    for data, field in [
        ({"conversation_id": "dm:a:b"}, "seq"),
        ({"conversation_id": "dm:a:b", "seq": -1}, "seq"),
        ({"conversation_id": "dm:a:b", "seq": True}, "seq"),
        ({"seq": 1}, "conversation_id"),
    ]:
        error = refused({"type": "read", "data": data})
        assert (error.code, error.data["field"]) == (Code.INVALID_FIELD, field)
    for data, field in [
        ({"conversation_ids": "g1", "pinned": True}, "conversation_ids"),
        ({"conversation_ids": [1], "pinned": True}, "conversation_ids"),
        ({"conversation_ids": ["g1"], "pinned": "yes"}, "pinned"),
    ]:
        error = refused({"type": "conversation_set", "data": data})
        assert (error.code, error.data["field"]) == (Code.INVALID_FIELD, field)
