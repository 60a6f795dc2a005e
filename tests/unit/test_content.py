"""Typed content per message_type (chat_events/events/content.py): good and bad contents of each
type, the field each error names, the stored (canonical) form, and the same rules applied to a
``personalChatSent`` from any producer (the worker dead-letters what the edge would refuse)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from chat_events.api.protocol import Code, ProtocolError, Send, parse_frame
from chat_events.errors import EventValidationError
from chat_events.events.content import (
    FIELDS,
    MAX_CONTENT_DEPTH,
    ContentError,
    canonical_content,
    check_payload,
)
from chat_events.events.types import MESSAGE_TYPES, PersonalChatSent
from chat_events.events.validation import validate_event

URL = "https://cdn.example/a/b.png"

GOOD: list[tuple[str, Any, str | None]] = [
    ("text", "hi", "hi"),
    ("text", "  spaced  ", "  spaced  "),
    ("face", {"face_id": "thumbs_up"}, '{"face_id":"thumbs_up"}'),
    ("face", {"url": URL, "face_id": 7}, f'{{"face_id":7,"url":"{URL}"}}'),
    ("face", {"face_id": "😀", "url": None}, '{"face_id":"😀"}'),
    ("voice", {"url": URL, "duration": 3}, f'{{"url":"{URL}","duration":3}}'),
    (
        "voice",
        {"duration": 0.5, "url": URL, "size": 100, "mime_type": "audio/ogg"},
        f'{{"url":"{URL}","duration":0.5,"size":100,"mime_type":"audio/ogg"}}',
    ),
    ("image", {"url": URL, "width": 1, "height": 100_000}, f'{{"url":"{URL}","width":1,"height":100000}}'),
    (
        "image",
        {"thumbnail_url": "http://t.example:8080/x?s=1#f", "height": 2, "width": 3, "url": URL, "size": 0},
        f'{{"url":"{URL}","width":3,"height":2,"thumbnail_url":"http://t.example:8080/x?s=1#f","size":0}}',
    ),
    (
        "file",
        {"url": URL, "name": "report final.pdf", "size": 0},
        f'{{"url":"{URL}","name":"report final.pdf","size":0}}',
    ),
    ("file", {"url": URL, "name": "a", "size": 2**53 - 1, "mime_type": "application/vnd.ms-excel"}, None),
    ("location", {"lat": 52.52, "lon": 13.405}, '{"lat":52.52,"lon":13.405}'),
    (
        "location",
        {"lon": -180, "lat": 90, "name": "Pole", "address": "N"},
        '{"lat":90,"lon":-180,"name":"Pole","address":"N"}',
    ),
    ("command", {"code": 0}, '{"code":0}'),
    ("command", {"code": 1001, "data": [1, {"k": None}]}, '{"code":1001,"data":[1,{"k":null}]}'),
    ("command", {"code": 2**31 - 1, "data": "opaque"}, '{"code":2147483647,"data":"opaque"}'),
    ("custom", {"anything": [1, 2, {"deep": True}]}, '{"anything":[1,2,{"deep":true}]}'),
    ("custom", {}, "{}"),
    ("custom", "a plain string", "a plain string"),
]


@pytest.mark.parametrize(("message_type", "content", "stored"), GOOD)
def test_good_contents_are_stored_in_their_canonical_form(message_type: str, content: Any, stored: str | None) -> None:
    text = canonical_content(message_type, content)
    if stored is not None:
        assert text == stored
    check_payload(message_type, text)  # what the edge stores, the worker accepts
    if isinstance(content, dict) and message_type != "custom":  # the same object, nulls left out
        assert orjson.loads(text) == {k: v for k, v in content.items() if v is not None}


BAD: list[tuple[str, Any, str, str]] = [
    # text
    ("text", {"text": "hi"}, "content", "must be a string, got object"),
    ("text", "   ", "content", "must not be blank"),
    ("text", None, "content", "must be a string, got null"),
    ("text", 5, "content", "must be a string, got integer"),
    # face
    ("face", "😀", "content", "must be an object for message_type face (face_id, url?), got string"),
    ("face", {}, "content.face_id", "is required"),
    ("face", {"face_id": ""}, "content.face_id", "must not be blank"),
    ("face", {"face_id": "x" * 129}, "content.face_id", "longer than 128 characters"),
    ("face", {"face_id": True}, "content.face_id", "must be a string or an integer, got boolean"),
    ("face", {"face_id": -1}, "content.face_id", "must be between 0 and"),
    ("face", {"face_id": 1.5}, "content.face_id", "must be a string or an integer, got number"),
    ("face", {"face_id": "x", "face_url": URL}, "content.face_url", "unknown field for message_type face"),
    ("face", {"face_id": "x", "url": "ftp://h/x"}, "content.url", "must be an http or https URL"),
    # voice
    ("voice", {"url": URL}, "content.duration", "is required"),
    ("voice", {"duration": 3}, "content.url", "is required"),
    ("voice", {"url": URL, "duration": 0}, "content.duration", "must be more than 0 and at most 86400"),
    ("voice", {"url": URL, "duration": -2.5}, "content.duration", "must be more than 0"),
    ("voice", {"url": URL, "duration": 86_401}, "content.duration", "at most 86400"),
    ("voice", {"url": URL, "duration": True}, "content.duration", "must be a number, got boolean"),
    ("voice", {"url": URL, "duration": "3"}, "content.duration", "must be a number, got string"),
    ("voice", {"url": URL, "duration": 3, "size": -1}, "content.size", "must be between 0 and"),
    ("voice", {"url": URL, "duration": 3, "mime_type": "ogg"}, "content.mime_type", "must be a media type"),
    ("voice", {"url": URL, "duration": 3, "mime_type": "audio/ogg; codecs=opus"}, "content.mime_type", "media type"),
    # image
    ("image", {"url": URL, "width": 10}, "content.height", "is required"),
    ("image", {"url": URL, "width": 0, "height": 1}, "content.width", "must be between 1 and 100000"),
    ("image", {"url": URL, "width": 1, "height": 100_001}, "content.height", "must be between 1 and 100000"),
    ("image", {"url": URL, "width": 2.0, "height": 1}, "content.width", "must be an integer, got number"),
    ("image", {"url": URL, "width": False, "height": 1}, "content.width", "must be an integer, got boolean"),
    ("image", {"url": URL, "width": "640", "height": 1}, "content.width", "must be an integer, got string"),
    ("image", {"url": "u", "width": 1, "height": 1}, "content.url", "must be an http or https URL"),
    ("image", {"url": "javascript:alert(1)", "width": 1, "height": 1}, "content.url", "must be an http or https URL"),
    ("image", {"url": "https://", "width": 1, "height": 1}, "content.url", "must name a host"),
    ("image", {"url": "https://h/a b.png", "width": 1, "height": 1}, "content.url", "must not contain spaces"),
    ("image", {"url": "https://h:99999/x", "width": 1, "height": 1}, "content.url", "is not a valid URL"),
    ("image", {"url": "http://[::1/x", "width": 1, "height": 1}, "content.url", "is not a valid URL"),
    ("image", {"url": "https://h/" + "x" * 2048, "width": 1, "height": 1}, "content.url", "longer than 2048"),
    ("image", {"url": 5, "width": 1, "height": 1}, "content.url", "must be a string, got integer"),
    ("image", {"url": URL, "width": 1, "height": 1, "thumbnail_url": "data:x"}, "content.thumbnail_url", "http"),
    ("image", {"url": URL, "width": 1, "height": 1, "thumbnailUrl": URL}, "content.thumbnailUrl", "unknown field"),
    ("image", [URL, 1, 1], "content", "must be an object for message_type image"),
    # file
    ("file", {"url": URL, "name": "a.txt"}, "content.size", "is required"),
    ("file", {"url": URL, "size": 1}, "content.name", "is required"),
    ("file", {"url": URL, "name": " ", "size": 1}, "content.name", "must not be blank"),
    ("file", {"url": URL, "name": "a\nb", "size": 1}, "content.name", "must not contain control characters"),
    ("file", {"url": URL, "name": "x" * 256, "size": 1}, "content.name", "longer than 255 characters"),
    ("file", {"url": URL, "name": "a", "size": 2**53}, "content.size", "must be between 0 and 9007199254740991"),
    ("file", {"url": URL, "name": "a", "size": 1, "id": 4}, "content.id", "unknown field"),
    # location
    ("location", {"lat": 1}, "content.lon", "is required"),
    ("location", {"lon": 1}, "content.lat", "is required"),
    ("location", {"lat": 90.0001, "lon": 0}, "content.lat", "must be between -90 and 90"),
    ("location", {"lat": 0, "lon": -180.5}, "content.lon", "must be between -180 and 180"),
    ("location", {"lat": "52.5", "lon": 0}, "content.lat", "must be a number, got string"),
    ("location", {"lat": True, "lon": 0}, "content.lat", "must be a number, got boolean"),
    ("location", {"lat": 0, "lng": 0}, "content.lng", "unknown field for message_type location"),
    ("location", {"lat": 0, "lon": 0, "name": "x" * 201}, "content.name", "longer than 200 characters"),
    ("location", {"lat": 0, "lon": 0, "address": ""}, "content.address", "must not be blank"),
    ("location", {"lat": 0, "lon": 0, "desc": "gim's"}, "content.desc", "unknown field"),
    # command
    ("command", {}, "content.code", "is required"),
    ("command", {"code": -1}, "content.code", "must be between 0 and 2147483647"),
    ("command", {"code": 2**31}, "content.code", "must be between 0 and 2147483647"),
    ("command", {"code": "7"}, "content.code", "must be an integer, got string"),
    ("command", {"code": 1, "args": []}, "content.args", "unknown field"),
    ("command", 7, "content", "must be an object for message_type command"),
    # custom
    ("custom", "  ", "content", "must not be blank"),
    ("custom", [1, 2], "content", "must be an object or a string, got array"),
    ("custom", 3, "content", "must be an object or a string, got integer"),
    ("custom", None, "content", "must be an object or a string, got null"),
    # an unknown key that cannot be shown as a field name is named as content
    ("location", {"lat": 0, "lon": 0, "a b": 1}, "content", "unknown field"),
]


@pytest.mark.parametrize(("message_type", "content", "field", "reason"), BAD)
def test_bad_contents_name_their_field(message_type: str, content: Any, field: str, reason: str) -> None:
    with pytest.raises(ContentError) as raised:
        canonical_content(message_type, content)
    assert raised.value.field == field
    assert reason in raised.value.reason


def test_every_message_type_has_good_and_bad_cases() -> None:
    assert {t for t, _, _ in GOOD} == MESSAGE_TYPES == {t for t, _, _, _ in BAD}
    assert set(FIELDS) == MESSAGE_TYPES - {"text", "custom"}


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("message_type", ["custom", "command"])
def test_nesting_is_bounded_for_every_object(message_type: str) -> None:
    body = _deep(MAX_CONTENT_DEPTH - 1)
    content = {"code": 1, "data": body} if message_type == "command" else {"a": body}
    canonical_content(message_type, content)  # 32 levels: accepted
    too_deep = {"code": 1, "data": {"a": body}} if message_type == "command" else {"a": {"a": body}}
    with pytest.raises(ContentError) as raised:
        canonical_content(message_type, too_deep)
    assert (raised.value.field, raised.value.reason) == ("content", "nested deeper than 32 levels")


# --- the edge's send: code 5 with data.field ----------------------------------------------------


def _send(message_type: str, content: Any) -> str:
    data = {"target_type": "user", "target_id": "bob", "message_type": message_type, "client_msg_id": "c"}
    return orjson.dumps({"type": "send", "request_id": 1, "data": {**data, "content": content}}).decode()


@pytest.mark.parametrize(("message_type", "content", "field", "reason"), BAD)
def test_the_edge_refuses_bad_content_with_invalid_field(
    message_type: str, content: Any, field: str, reason: str
) -> None:
    with pytest.raises(ProtocolError) as raised:
        parse_frame(_send(message_type, content), max_payload_bytes=32768)
    assert raised.value.code == Code.INVALID_FIELD and raised.value.data == {"field": field}
    assert raised.value.message.startswith(f"{field}: ") and reason in raised.value.message
    assert (raised.value.frame_type, raised.value.request_id) == ("send", 1)


def test_the_edge_stores_the_canonical_form_and_checks_its_size() -> None:
    image = {"height": 2, "width": 3, "url": URL}
    request = parse_frame(_send("image", image), max_payload_bytes=32768).request
    assert isinstance(request, Send) and request.content == f'{{"url":"{URL}","width":3,"height":2}}'
    with pytest.raises(ProtocolError) as raised:
        parse_frame(_send("custom", {"x": "y" * 100}), max_payload_bytes=100)
    assert raised.value.code == Code.PAYLOAD_TOO_LARGE and raised.value.data == {"field": "content"}


# --- the worker's check of personalChatSent (another producer's record) --------------------------


def _event(message_type: str, payload: str) -> PersonalChatSent:
    return PersonalChatSent(
        message_id="93938ddc-20c0-545d-9337-bee7f6e0ad56",
        sender_id="alice",
        target_id="bob",
        payload=payload,
        target_type="user",
        message_type=message_type,
    )


@pytest.mark.parametrize(
    ("message_type", "payload", "path", "reason"),
    [
        ("image", '{"url":"https://h/x","width":1}', "payload.personalChatSent.payload.height", "is required"),
        (
            "image",
            "a picture",
            "payload.personalChatSent.payload",
            "must be the JSON of an object for message_type image",
        ),
        ("location", '{"lat":91,"lon":0}', "payload.personalChatSent.payload.lat", "between -90 and 90"),
        ("location", '{"lat":1,"lon":0,"x":1}', "payload.personalChatSent.payload.x", "unknown field"),
        ("voice", "[1]", "payload.personalChatSent.payload", "must be an object for message_type voice"),
        ("text", " \n ", "payload.personalChatSent.payload", "must not be blank"),
        ("custom", "\t", "payload.personalChatSent.payload", "must not be blank"),
        ("command", '{"code":1.0}', "payload.personalChatSent.payload.code", "must be an integer"),
    ],
)
def test_a_personal_chat_sent_with_bad_content_is_invalid(
    message_type: str, payload: str, path: str, reason: str
) -> None:
    with pytest.raises(EventValidationError) as raised:
        validate_event(_event(message_type, payload), max_payload_bytes=32768)
    assert raised.value.field == path and reason in raised.value.reason


@pytest.mark.parametrize(
    ("message_type", "payload"),
    [
        ("image", '{"width": 3, "url": "https://h/x", "height": 2}'),  # not canonical, still valid
        ("custom", "not json at all"),
        ("custom", '{"a":1}'),
        ("text", '{"looks":"like json"}'),
    ],
)
def test_a_valid_payload_from_another_producer_is_accepted(message_type: str, payload: str) -> None:
    validate_event(_event(message_type, payload), max_payload_bytes=32768)
