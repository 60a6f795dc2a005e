"""The test harness hands a worker or edge subprocess its settings as ``CHAT_*`` variables
(``settings_env``): the child must build exactly the parent's settings, Cassandra included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from chat_events.settings import Settings
from tests.integration.worker_harness import settings_env


def test_settings_survive_the_trip_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:9093",
        kafka_idempotence="on",
        topic_prefix="t0123456789.",
        data_dir=Path("/tmp/chat-events-test/data"),
        cassandra_contact_points="127.0.0.1:9043,[::1]:9044",
        cassandra_keyspace="t_module_abc123",
        cassandra_username="chat",
        cassandra_password=SecretStr("cassandra secret"),
        auth_secret=SecretStr("x" * 40),
        worker_session_timeout_s=6.0,
        ws_per_message_deflate=True,
    )
    env = settings_env(settings)
    assert "None" not in env.values()  # unset optional values stay unset
    assert "CHAT_EDGE_NAME" not in env and "CHAT_CASSANDRA_LOCAL_DC" not in env
    assert env["CHAT_CASSANDRA_PASSWORD"] == "cassandra secret"  # the secret, not '**********'
    assert env["CHAT_AUTH_SECRET"] == "x" * 40

    for name in [k for k in os.environ if k.startswith("CHAT_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("CHAT_"):
            monkeypatch.setenv(name, value)
    child = Settings()
    assert child == settings
    assert child.store_kind == "cassandra"
    assert child.cassandra_password is not None and child.cassandra_password.get_secret_value() == "cassandra secret"
