"""Typed content (issue 16, item 3) through the real edges, broker, worker and store: an image and
a location from alice reach bob's devices as their objects and are in history; bad content over
the socket gets its code naming the field and nothing reaches Kafka; a bad record another
producer wrote straight to the topic is dead-lettered by the worker, not stored. One worker and
two edges serve the module (the fixture of test_edge_e2e.py); each test has its own users."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from chat_events.client import ChatError, HttpApi
from chat_events.client.content import (
    Command,
    Custom,
    Face,
    File,
    Image,
    Location,
    TypedContent,
    Voice,
    typed_content,
)
from chat_events.codec import build_codec
from chat_events.events.conversations import direct_conversation_id
from chat_events.events.factory import new_envelope
from chat_events.events.types import PersonalChatSent, RecordDeadLettered
from chat_events.topics import DEAD_LETTER, PERSONAL_CHAT, TopicCatalog
from tests.integration.test_edge_e2e import System, receive_n, system, uid
from tests.integration.worker_harness import read_topic, wait_until

__all__ = ["system"]  # the module's worker and edges (a fixture)

IMAGE = Image(url="https://cdn.example/cat.jpg", width=640, height=480, thumbnail_url="https://cdn.example/cat-t.jpg")
LOCATION = Location(lat=52.5163, lon=13.3777, name="Brandenburger Tor")


async def test_an_image_and_a_location_arrive_as_objects_and_are_in_history(system: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    async with await system.client(system.a, alice) as a, await system.client(system.b, bob) as b:
        image = await a.send("user", bob, IMAGE)
        place = await a.send("user", bob, LOCATION)
        got = await receive_n(b, 2)
        assert [d.message["message_id"] for d in got] == [image.message_id, place.message_id]
        assert [d.message["message_type"] for d in got] == ["image", "location"]
        assert got[0].body == {
            "url": "https://cdn.example/cat.jpg",
            "width": 640,
            "height": 480,
            "thumbnail_url": "https://cdn.example/cat-t.jpg",
        }
        assert got[1].body == {"lat": 52.5163, "lon": 13.3777, "name": "Brandenburger Tor"}
        assert [d.typed for d in got] == [IMAGE, LOCATION]
        mine = await receive_n(a, 2)  # the sender's own copies carry the same content
        assert [d.typed for d in mine] == [IMAGE, LOCATION]
    async with HttpApi(system.b.http, token=await system.token(bob)) as http:
        page = await http.history(direct_conversation_id(alice, bob), after_seq=0)
    assert [m["message_id"] for m in page.messages] == [image.message_id, place.message_id]
    assert [typed_content(m) for m in page.messages] == [IMAGE, LOCATION]
    stored = await system.store.get_message(image.message_id)
    assert stored is not None and orjson.loads(stored.payload) == got[0].body


async def test_every_other_type_round_trips(system: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    contents: list[TypedContent] = [
        Face(face_id="thumbs_up"),
        Voice(url="https://cdn.example/v.ogg", duration=2.5, size=4096, mime_type="audio/ogg"),
        File(url="https://cdn.example/r.pdf", name="report.pdf", size=123_456),
        Command(code=1001, data={"action": "refresh"}),
        Custom({"card": {"title": "Poll", "options": ["a", "b"]}}),
        Custom("opaque application data"),
    ]
    async with await system.client(system.a, alice) as a, await system.client(system.b, bob) as b:
        for content in contents:
            await a.send("user", bob, content)
        got = await receive_n(b, len(contents))
    assert [d.typed for d in got] == contents
    assert [d.message["message_type"] for d in got] == ["face", "voice", "file", "command", "custom", "custom"]


BAD: list[tuple[str, Any, int, str]] = [
    ("image", {"url": "https://h/x.png", "width": 10}, 5, "content.height"),
    ("image", {"url": "ftp://h/x.png", "width": 10, "height": 10}, 5, "content.url"),
    ("image", {"url": "https://h/x.png", "width": True, "height": 10}, 5, "content.width"),
    ("image", "https://h/x.png", 5, "content"),
    ("location", {"lat": 91, "lon": 0}, 5, "content.lat"),
    ("location", {"lat": 0, "lng": 0}, 5, "content.lng"),
    ("voice", {"url": "https://h/v.ogg", "duration": 0}, 5, "content.duration"),
    ("file", {"url": "https://h/f", "name": "f"}, 5, "content.size"),
    ("face", {}, 5, "content.face_id"),
    ("command", {"code": "1"}, 5, "content.code"),
    ("custom", [1, 2], 5, "content"),
    ("text", {"text": "hi"}, 5, "content"),
    ("text", "  ", 5, "content"),
    ("custom", {"blob": "x" * 40_000}, 14, "content"),
]


async def test_bad_content_gets_its_code_and_field_and_nothing_reaches_kafka(system: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    async with await system.client(system.a, alice) as a:
        for message_type, content, code, field in BAD:
            with pytest.raises(ChatError) as raised:
                await a.send("user", bob, content, message_type=message_type, retries=0)
            assert (raised.value.code, raised.value.data.get("field")) == (code, field), (message_type, content)
            assert raised.value.message.startswith(f"{field}: ")
        ok = await a.send("user", bob, LOCATION)  # the socket is fine after each refusal
    codec = build_codec(system.settings)
    topic = TopicCatalog(system.settings).resolve(PERSONAL_CHAT).name
    sent = [e.payload for e in await read_topic(system.settings, codec, topic) if e.user_id == alice]
    assert [p.message_id for p in sent if isinstance(p, PersonalChatSent)] == [ok.message_id]


async def test_a_bad_record_from_another_producer_is_dead_lettered_not_stored(system: System) -> None:
    alice, bob = uid("alice"), uid("bob")
    conversation_id = direct_conversation_id(alice, bob)
    bad = PersonalChatSent(
        message_id=str(uuid.uuid4()),
        sender_id=alice,
        target_id=bob,
        payload='{"url":"https://h/x.png","width":640}',  # no height
        target_type="user",
        conversation_id=conversation_id,
        message_type="image",
    )
    envelope = new_envelope(bad, user_id=alice)
    codec = build_codec(system.settings)
    catalog = TopicCatalog(system.settings)
    async with await system.client(system.b, bob) as b:
        producer = AIOKafkaProducer(bootstrap_servers=system.settings.kafka_bootstrap_servers)
        await producer.start()
        try:  # written as a producer that skips the checks would write it
            await producer.send_and_wait(
                catalog.resolve(PERSONAL_CHAT).name,
                codec.encode(envelope, validate=False),
                key=conversation_id.encode(),
            )
        finally:
            await producer.stop()

        def is_ours(letter: RecordDeadLettered) -> bool:
            try:
                return codec.decode(letter.value).id == envelope.id
            except Exception:  # another test's undecodable record
                return False

        async def dead_letters() -> list[RecordDeadLettered]:
            envelopes = await read_topic(system.settings, codec, catalog.resolve(DEAD_LETTER).name)
            return [e.payload for e in envelopes if isinstance(e.payload, RecordDeadLettered) and is_ours(e.payload)]

        async def parked() -> bool:
            return bool(await dead_letters())

        await wait_until(parked, what="the bad record dead-lettered")
        [letter] = await dead_letters()
        assert (letter.stage, letter.error_code) == ("persist", "invalid_event")
        assert "payload.personalChatSent.payload.height: is required" in letter.reason
        async with await system.client(system.a, alice) as a:  # the conversation flows on
            after = await a.send("user", bob, IMAGE)
        [delivery] = await receive_n(b, 1)
        assert delivery.message["message_id"] == after.message_id and delivery.user_seq == 1
    assert await system.store.get_message(bad.message_id) is None
