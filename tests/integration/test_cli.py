"""The command line as a user runs it: real processes, real broker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from chat_events.codec import build_codec
from chat_events.events.factory import new_envelope
from chat_events.events.types import EdgeHeartbeat, UserConnected
from chat_events.kafka.admin import ensure_topics
from chat_events.kafka.connection import KafkaTarget
from chat_events.producers import EventPublisher
from chat_events.settings import Settings
from chat_events.topics import TopicCatalog

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("topics")]
CLI = [sys.executable, "-m", "chat_events.cli.main"]


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env.update(
        CHAT_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers or "",
        CHAT_KAFKA_IDEMPOTENCE=settings.kafka_idempotence,
        CHAT_TOPIC_PREFIX=settings.topic_prefix,
        CHAT_TOPIC_PARTITIONS=str(settings.topic_partitions),
        CHAT_DATA_DIR=str(settings.data_dir),
    )
    return env


def _run(settings: Settings, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=_env(settings), capture_output=True, text=True, timeout=timeout)


def test_publish_then_consume_round_trip(settings: Settings) -> None:
    body = {"sender_id": "alice", "target_id": "bob", "target_type": "user", "payload": "hi bob"}
    published = _run(settings, "publish", "personalChatSent", "--json", json.dumps(body))
    assert published.returncode == 0, published.stderr
    where = json.loads(published.stdout)
    assert where["topic"] == settings.topic_prefix + "chat.personal-chat" and where["offset"] == 0

    consumed = _run(settings, "consume", "chat.personal-chat", "--from-beginning", "--max", "1", "--timeout", "20")
    assert consumed.returncode == 0, consumed.stderr
    envelope = json.loads(consumed.stdout.strip())
    assert envelope["id"] == where["id"]
    assert envelope["payload"]["personalChatSent"]["payload"] == "hi bob"
    assert envelope["payload"]["personalChatSent"]["conversation_id"] == "dm:alice:bob"
    assert list(envelope)[:2] == ["payload", "id"]


def test_publish_rejects_bad_input_with_a_clear_error(settings: Settings) -> None:
    cases = [
        ("personalChatSent", "{not json", "--json is not valid JSON"),
        (
            "personalChatSent",
            '{"sender_id": "a", "target_id": "b", "target_type": "user", "payload": "x", "message_id": "123"}',
            "payload.personalChatSent.message_id",
        ),
        ("userDisconnected", '{"reason": "x", "code": "1000", "forced": false}', "payload.userDisconnected.code"),
        ("userConnected", "{}", "userId: is required"),
    ]
    for event, body, expected in cases:
        result = (
            _run(settings, "publish", event, "--json", body, "--user-id", "alice")
            if event != "userConnected"
            else _run(settings, "publish", event, "--json", body)
        )
        assert result.returncode == 2, (body, result.stderr)
        assert "error: invalid_event:" in result.stderr and expected in result.stderr
        assert "Traceback" not in result.stderr
    consumed = _run(settings, "consume", "chat.personal-chat", "--from-beginning", "--timeout", "1")
    assert consumed.returncode == 0 and consumed.stdout == ""


def test_unknown_topic_is_refused(settings: Settings) -> None:
    """Its own code and exit status (3), not invalid_event (2): no event was wrong."""
    result = _run(settings, "consume", "chat.nope", "--timeout", "1")
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("error: unknown_topic: unknown topic 'chat.nope'; declared: ")
    assert "invalid_event" not in result.stderr and result.stderr.count("\n") == 1
    wrong_event = _run(settings, "consume", "chat.personal-chat", "--event", "userConnected", "--timeout", "1")
    assert wrong_event.returncode == 2 and wrong_event.stderr.startswith("error: usage_error: --event userConnected")


def _consume_all(settings: Settings, topic: str) -> list[dict[str, Any]]:
    consumed = _run(settings, "consume", topic, "--from-beginning", "--timeout", "3")
    assert consumed.returncode == 0, consumed.stderr
    return [json.loads(line) for line in consumed.stdout.splitlines()]


def test_publish_reads_json_from_a_file_or_stdin(settings: Settings, tmp_path: Path) -> None:
    body = tmp_path / "event.json"
    body.write_text(json.dumps({"sender_id": "alice", "target_id": "bob", "target_type": "user", "payload": "file"}))
    from_file = _run(settings, "publish", "personalChatSent", "--json", f"@{body}")
    assert from_file.returncode == 0, from_file.stderr
    stdin_body = {"sender_id": "bob", "target_id": "alice", "target_type": "user", "payload": "stdin"}
    from_stdin = subprocess.run(
        [*CLI, "publish", "personalChatSent", "--json", "-"],
        env=_env(settings),
        input=json.dumps(stdin_body),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert from_stdin.returncode == 0, from_stdin.stderr
    payloads = [e["payload"]["personalChatSent"]["payload"] for e in _consume_all(settings, "chat.personal-chat")]
    assert sorted(payloads) == ["file", "stdin"]

    missing = _run(settings, "publish", "personalChatSent", "--json", f"@{tmp_path / 'nope.json'}")
    assert missing.returncode == 2 and missing.stderr.startswith("error: usage_error: --json @"), missing.stderr
    assert "nope.json" in missing.stderr and "Traceback" not in missing.stderr


def test_publish_help_says_it_bypasses_the_edge() -> None:
    result = subprocess.run([*CLI, "publish", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "straight to its Kafka topic" in text and "bypasses the edge and its rules" in text
    assert "authorisation" in text and "to yourself" in text and "unknown groups" in text
    assert "@FILE" in text and "- to read stdin" in text


def test_the_envelope_form_is_completed_like_the_fields_form(settings: Settings) -> None:
    """No message_id, conversation_id, userId, id, version, timestamp...: filled as the fields form fills them."""
    fields = {"sender_id": "alice", "target_id": "bob", "target_type": "user", "payload": "envelope form"}
    envelope = {"payload": {"personalChatSent": fields}}
    published = _run(settings, "publish", "personalChatSent", "--json", json.dumps(envelope), "--session-id", "s1")
    assert published.returncode == 0, published.stderr
    by_fields = _run(settings, "publish", "personalChatSent", "--json", json.dumps(fields), "--session-id", "s1")
    assert by_fields.returncode == 0, by_fields.stderr
    first, second = _consume_all(settings, "chat.personal-chat")
    for got in (first, second):
        event = got["payload"]["personalChatSent"]
        assert event["conversation_id"] == "dm:alice:bob" and len(event["message_id"]) == 36
        assert (got["userId"], got["sessionId"], got["clientId"]) == ("alice", "s1", "chat-events-cli")
    assert set(first) == set(second)
    assert first["payload"]["personalChatSent"]["message_id"] != second["payload"]["personalChatSent"]["message_id"]

    kept = {"payload": {"userConnected": {}}, "userId": "carol", "sessionId": "mine"}
    result = _run(settings, "publish", "userConnected", "--json", json.dumps(kept), "--session-id", "flag")
    assert result.returncode == 0, result.stderr
    (connected,) = _consume_all(settings, "chat.user-events")
    assert (connected["userId"], connected["sessionId"]) == ("carol", "mine")  # given values are kept


def test_consume_timeout_counts_only_the_chosen_events(settings: Settings, kafka_target: KafkaTarget) -> None:
    """An edge's heartbeats every 0.2 s on chat.user-events do not keep a reader of userConnected
    alive: it prints the one userConnected and ends once none arrived for --timeout seconds."""
    consume = subprocess.Popen(
        [*CLI, "consume", "chat.user-events", "--from-beginning", "--event", "userConnected", "--timeout", "3"],
        env=_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    async def heartbeats_until_it_ends() -> None:
        async with EventPublisher(settings, kafka_target, build_codec(settings)) as publisher:
            await publisher.publish(new_envelope(UserConnected(edge_id="edge-a.1234abcd"), user_id="dave"))
            deadline = time.monotonic() + 90
            while consume.poll() is None and time.monotonic() < deadline:
                beat = EdgeHeartbeat(edge_id="edge-a.1234abcd", interval_ms=200, started_at_ms=1, sessions=1)
                await publisher.publish(new_envelope(beat))
                await asyncio.sleep(0.2)

    try:
        asyncio.run(heartbeats_until_it_ends())
        assert consume.poll() is not None, "consume --timeout kept running while only heartbeats arrived"
        out, err = consume.communicate(timeout=30)
    finally:
        if consume.poll() is None:
            consume.kill()
            consume.wait(10)
    assert consume.returncode == 0, err
    (line,) = out.splitlines()
    assert json.loads(line)["userId"] == "dave" and "userConnected" in json.loads(line)["payload"]


def test_publish_writes_an_edge_event_to_the_edge_it_names(settings: Settings, kafka_target: KafkaTarget) -> None:
    """Not the template chat.edge.{edge_id} (a Kafka error after retries): the named edge's topic."""
    edge_topic = TopicCatalog(settings).edge_topic("edge-a.1234abcd")
    asyncio.run(ensure_topics(settings, kafka_target, [edge_topic]))
    message = {
        "message_id": "0b7a4a36-8a3c-4a53-9d7e-0e3c3b1f2a11",
        "conversation_id": "dm:alice:bob",
        "seq": 1,
        "sender_id": "alice",
        "target_type": "user",
        "target_id": "bob",
        "message_type": "text",
        "payload": "hi",
    }
    body = {"recipient_id": "bob", "user_seq": 1, "edge_id": "edge-a.1234abcd", "message": message}
    published = _run(settings, "publish", "messageDispatched", "--json", json.dumps(body))
    assert published.returncode == 0, published.stderr
    assert json.loads(published.stdout)["topic"] == edge_topic.name
    (dispatched,) = _consume_all(settings, edge_topic.name)
    assert dispatched["payload"]["messageDispatched"]["recipient_id"] == "bob"
    typing = {"conversation_id": "dm:alice:bob", "target_type": "user", "target_id": "bob", "state": "start"}
    refused = _run(settings, "publish", "userTyping", "--json", json.dumps(typing), "--user-id", "alice")
    assert refused.returncode == 2 and refused.stderr.startswith("error: usage_error: userTyping goes to one edge")


def test_size_limits_have_one_wording(settings: Settings) -> None:
    """Too many characters or too many UTF-8 bytes: the same words, the edge's for content."""
    limit = settings.max_payload_bytes
    for text in ("x" * (limit + 1), "\u00e9" * (limit // 2 + 1)):  # ASCII, and 2 bytes per character
        body = {"sender_id": "alice", "target_id": "bob", "target_type": "user", "payload": text}
        result = _run(settings, "publish", "personalChatSent", "--json", json.dumps(body))
        assert result.returncode == 2, result.stderr
        assert result.stderr == (
            f"error: invalid_event: payload.personalChatSent.payload: larger than {limit} bytes\n"
        ), result.stderr


def test_broker_command_starts_announces_and_stops_cleanly(
    settings: Settings, kafka_target: KafkaTarget, tmp_path: Path
) -> None:
    env = _env(settings)
    env.pop("CHAT_KAFKA_BOOTSTRAP_SERVERS")
    env.pop("CHAT_KAFKA_IDEMPOTENCE")  # auto: off for the embedded broker this test starts
    env["CHAT_DATA_DIR"] = str(tmp_path / "broker-data")
    process = subprocess.Popen([*CLI, "broker", "--port", "0"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "embedded broker listening on 127.0.0.1:" in first
        state = json.loads((tmp_path / "broker-data" / "embedded-broker.json").read_text())
        # Other commands find the running broker through the data directory.
        published = subprocess.run(
            [*CLI, "publish", "userConnected", "--json", "{}", "--user-id", "alice", "--session-id", "s1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert published.returncode == 0, published.stderr
        assert json.loads(published.stdout)["topic"].endswith("chat.user-events")
        # One instance per data directory: a second broker, or an up, there is refused at once.
        for second in (["broker", "--port", "0"], ["up", "--stack", "embedded", "--port", "0", "--edge-port", "0"]):
            refused = subprocess.run([*CLI, *second], env=env, capture_output=True, text=True, timeout=60)
            assert refused.returncode == 1, refused.stdout + refused.stderr
            assert f"chat-events broker is already running (pid {process.pid}, {state['bootstrap_servers']}," in (
                refused.stderr
            )
        assert json.loads((tmp_path / "broker-data" / "embedded-broker.json").read_text()) == state
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)
    assert process.returncode == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(state["pid"], 0)
        except OSError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the broker process outlived `chat-events broker`")
    assert not (tmp_path / "broker-data" / "embedded-broker.json").exists()


def test_no_broker_configured_gives_guidance(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env["CHAT_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [*CLI, "publish", "userConnected", "--json", "{}", "--user-id", "a"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "chat-events broker" in result.stderr and "Traceback" not in result.stderr


def test_idempotence_unsupported_is_one_clear_line(settings: Settings, kafka_target: KafkaTarget) -> None:
    if not kafka_target.embedded:
        pytest.skip("needs a broker without idempotent producers (the embedded one)")
    body = {"sender_id": "alice", "target_id": "bob", "target_type": "user", "payload": "hi"}
    result = _run(
        settings.model_copy(update={"kafka_idempotence": "on"}),
        "publish",
        "personalChatSent",
        "--json",
        json.dumps(body),
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr  # no aiokafka log line beside it
    assert result.stderr.startswith("error: idempotence_unsupported: ")
    assert "does not support idempotent producers" in result.stderr and "CHAT_KAFKA_IDEMPOTENCE=off" in result.stderr


def test_consume_of_a_topic_missing_on_the_broker_is_one_clear_line(settings: Settings) -> None:
    """Declared, but not created on this broker (another prefix): refused within the connect timeout."""
    env = {
        **_env(settings),
        "CHAT_TOPIC_PREFIX": f"missing{settings.topic_prefix}",
        "CHAT_KAFKA_CONNECT_TIMEOUT_S": "2",
    }
    started = time.monotonic()
    result = subprocess.run(
        [*CLI, "consume", "chat.personal-chat", "--timeout", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: configuration_error: topic 'missing")
    assert "has no partitions" in result.stderr and "chat-events topics create" in result.stderr
    assert time.monotonic() - started < 15
