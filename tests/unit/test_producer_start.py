"""What a failed producer start means: an unreachable broker, or one that answered and refused
an idempotent producer id."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError, UnknownError, UnsupportedVersionError

from chat_events.errors import BrokerUnavailableError, ConfigurationError, IdempotenceUnsupportedError
from chat_events.kafka.connection import KafkaTarget
from chat_events.producers.kafka_producer import start_failure
from chat_events.settings import Settings

TARGET = KafkaTarget("broker:9092", embedded=False)


def settings(tmp_path: Path) -> Settings:
    return Settings(kafka_bootstrap_servers=TARGET.bootstrap_servers, data_dir=tmp_path, kafka_connect_timeout_s=4)


@pytest.mark.parametrize("exc", [UnknownError(), UnsupportedVersionError()])
def test_a_reachable_broker_refusing_init_producer_id_names_the_setting(tmp_path: Path, exc: Exception) -> None:
    error = start_failure(exc, settings(tmp_path), TARGET, reached=True, idempotent=True)
    assert isinstance(error, IdempotenceUnsupportedError) and isinstance(error, ConfigurationError)
    assert not error.retriable
    message = str(error)
    assert "does not support idempotent producers" in message and "CHAT_KAFKA_IDEMPOTENCE=off" in message
    assert type(exc).__name__ in message and "cannot reach" not in message


def test_a_reachable_broker_that_never_grants_an_id(tmp_path: Path) -> None:
    error = start_failure(TimeoutError(), settings(tmp_path), TARGET, reached=True, idempotent=True)
    assert isinstance(error, IdempotenceUnsupportedError)
    assert "within 4s" in str(error) and "CHAT_KAFKA_IDEMPOTENCE=off" in str(error)


@pytest.mark.parametrize(
    ("exc", "reached", "idempotent"),
    [
        (KafkaConnectionError("refused"), False, True),  # bootstrap failed
        (TimeoutError(), False, True),  # bootstrap hung
        (UnknownError(), True, False),  # not idempotent: InitProducerId never ran
        (OSError("reset"), True, True),
    ],
)
def test_anything_else_is_an_unreachable_broker(
    tmp_path: Path, exc: Exception, reached: bool, idempotent: bool
) -> None:
    error = start_failure(exc, settings(tmp_path), TARGET, reached=reached, idempotent=idempotent)
    assert type(error) is BrokerUnavailableError
    assert str(error).startswith("cannot reach Kafka at broker:9092 within 4s")
