"""Which stack ``chat-events up`` runs, and the variables it hands to everything else."""

from __future__ import annotations

from chat_events.cli.stack import RunningStack, choose_stack


def test_default_is_real_kafka_when_the_engines_can_run() -> None:
    assert choose_stack(None, engines_ok=True, engines_reason="", external_kafka=False).stack == "kafka"


def test_default_falls_back_to_embedded_with_the_reason() -> None:
    choice = choose_stack(None, engines_ok=False, engines_reason="no Java 17+", external_kafka=False)
    assert choice.stack == "embedded"
    assert choice.note is not None and "no Java 17+" in choice.note and "\n" not in choice.note


def test_external_kafka_is_a_kafka_stack_without_local_engines() -> None:
    assert choose_stack(None, engines_ok=False, engines_reason="x", external_kafka=True).stack == "kafka"


def test_an_explicit_stack_is_honoured() -> None:
    for stack in ("embedded", "kafka", "kafka-cassandra"):
        choice = choose_stack(stack, engines_ok=False, engines_reason="x", external_kafka=False)  # type: ignore[arg-type]
        assert choice.stack == stack and choice.note is None


def test_child_environment_names_every_engine() -> None:
    real = RunningStack("kafka-cassandra", "127.0.0.1:9092", False, "127.0.0.1:9042")
    assert real.child_env() == {
        "CHAT_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "CHAT_CASSANDRA_CONTACT_POINTS": "127.0.0.1:9042",
    }
    embedded = RunningStack("embedded", "127.0.0.1:9092", True, None)
    assert embedded.child_env() == {
        "CHAT_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "CHAT_KAFKA_BROKER": "embedded",
        "CHAT_KAFKA_IDEMPOTENCE": "off",
    }
