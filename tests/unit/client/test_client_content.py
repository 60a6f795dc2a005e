"""The client's typed content (chat_events/client/content.py): what send carries for each value
type, and a delivered message's content back as its object and value type. Every value the
client builds is accepted by the edge's own validator (chat_events/events/content.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from chat_events.client import Delivery
from chat_events.client.content import (
    TYPED_CONTENT,
    Command,
    Custom,
    Face,
    File,
    Image,
    Location,
    TypedContent,
    Voice,
    content_value,
    decode_content,
    outgoing,
    typed_content,
)
from chat_events.events.content import FIELDS, canonical_content

VALUES: list[tuple[TypedContent, dict[str, Any] | str]] = [
    (Face(face_id=7), {"face_id": 7}),
    (Face(face_id="👍", url="https://cdn.example/f.png"), {"face_id": "👍", "url": "https://cdn.example/f.png"}),
    (Voice(url="https://h/v.ogg", duration=1.5), {"url": "https://h/v.ogg", "duration": 1.5}),
    (
        Image(url="https://h/i.jpg", width=2, height=3, size=10),
        {"url": "https://h/i.jpg", "width": 2, "height": 3, "size": 10},
    ),
    (File(url="https://h/f", name="f.txt", size=0), {"url": "https://h/f", "name": "f.txt", "size": 0}),
    (Location(lat=-33.86, lon=151.21, address="Sydney"), {"lat": -33.86, "lon": 151.21, "address": "Sydney"}),
    (Command(code=1001), {"code": 1001}),
    (Command(code=1002, data=[1, "x"]), {"code": 1002, "data": [1, "x"]}),
    (Custom({"poll": ["a", "b"]}), {"poll": ["a", "b"]}),
    (Custom("raw"), "raw"),
]


@pytest.mark.parametrize(("value", "sent"), VALUES)
def test_each_value_sends_its_fields_and_comes_back_as_itself(value: TypedContent, sent: dict[str, Any] | str) -> None:
    assert content_value(value) == sent
    message_type, content = outgoing(value, None)
    assert (message_type, content) == (value.MESSAGE_TYPE, sent)
    stored = canonical_content(message_type, content)  # the edge accepts it, and stores this
    assert decode_content(message_type, stored) == sent
    message = {"message_type": message_type, "content": stored}
    assert typed_content(message) == value
    assert Delivery(1, message).body == sent and Delivery(1, message).typed == value


def test_every_object_type_has_a_value_type_with_the_edge_s_fields() -> None:
    assert set(TYPED_CONTENT) == set(FIELDS)
    for message_type, cls in TYPED_CONTENT.items():
        assert [f.name for f in dataclasses.fields(cls)] == list(FIELDS[message_type]), message_type


def test_plain_content_goes_as_given() -> None:
    assert outgoing("hi", None) == ("text", "hi")
    assert outgoing({"a": 1}, "custom") == ("custom", {"a": 1})
    assert outgoing({"url": "u"}, "image") == ("image", {"url": "u"})  # the edge judges it
    assert outgoing(Image(url="u", width=1, height=1), "image")[0] == "image"
    with pytest.raises(ValueError, match="does not match"):
        outgoing(Location(lat=0, lon=0), "image")


def test_text_and_other_strings_stay_strings() -> None:
    assert decode_content("text", '{"a":1}') == '{"a":1}'
    assert decode_content("custom", "{not json") == "{not json"
    assert decode_content("custom", '{"a":1}') == {"a": 1}
    assert typed_content({"message_type": "text", "content": "hi"}) == "hi"
    assert Delivery(1, {"content": "hi"}).body == "hi"


def test_newer_fields_are_ignored_and_a_misfit_raises() -> None:
    message = {"message_type": "location", "content": '{"lat":1,"lon":2,"altitude":30}'}
    assert typed_content(message) == Location(lat=1, lon=2)
    with pytest.raises(ValueError, match="does not fit"):
        typed_content({"message_type": "image", "content": '{"url":"https://h/x"}'})
    with pytest.raises(ValueError, match="not an object"):
        typed_content({"message_type": "image", "content": "a picture"})
