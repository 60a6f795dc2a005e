"""The engines' pure parts: Java version parsing, the generated configs, the cache layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chat_events.engines import availability, maven
from chat_events.engines.availability import EngineUnavailableError, parse_java_major
from chat_events.engines.cassandra import cassandra_yaml
from chat_events.engines.kafka import new_cluster_id, server_properties


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "25" 2025-09-16', 25),
        ('java version "1.8.0_392"', 8),
        ("no version here", None),
    ],
)
def test_java_major_version(output: str, major: int | None) -> None:
    assert parse_java_major(output) == major


def test_kafka_properties_are_one_combined_kraft_node(tmp_path: Path) -> None:
    props = dict(line.split("=", 1) for line in server_properties(tmp_path, 9100, 9101).splitlines() if line.strip())
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9100,CONTROLLER://127.0.0.1:9101"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9101"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["log.dirs"] == str(tmp_path / "log")


def test_cluster_ids_are_fresh_22_character_base64() -> None:
    ids = {new_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == 22 and "=" not in i for i in ids)


def test_a_cluster_id_never_starts_with_a_dash() -> None:
    """The storage tool took `-t -abc...` for an option and failed the start (1 in 64 ids)."""
    draws = iter([b"\xfb" + bytes(15), bytes(16)])  # the first encodes as "-wAA...", the second "AAAA..."
    assert new_cluster_id(lambda: next(draws)) == "A" * 22


def test_cassandra_yaml_is_loopback_single_node(tmp_path: Path) -> None:
    config = yaml.safe_load(cassandra_yaml(tmp_path, 9142, 9143))
    assert config["native_transport_port"] == 9142
    assert config["storage_port"] == 9143
    assert config["endpoint_snitch"] == "SimpleSnitch"
    assert config["auto_snapshot"] is False
    assert config["seed_provider"][0]["parameters"][0]["seeds"] == "127.0.0.1:9143"
    for key in ("commitlog_directory", "hints_directory", "saved_caches_directory", "cdc_raw_directory"):
        assert str(config[key]).startswith(str(tmp_path))


def test_cache_folder_follows_the_pom(tmp_path: Path) -> None:
    kafka, cassandra = maven.cache_folder(tmp_path, "kafka"), maven.cache_folder(tmp_path, "cassandra")
    assert kafka.parent == tmp_path and kafka.name.startswith("kafka-")
    assert kafka != cassandra
    assert not maven.is_cached(tmp_path, "kafka")
    (kafka / "lib").mkdir(parents=True)
    (kafka / "complete").write_text("")
    assert maven.is_cached(tmp_path, "kafka")


def test_poms_name_the_engines() -> None:
    assert "kafka_2.13" in maven.pom_text("kafka") and "log4j-slf4j-impl" in maven.pom_text("kafka")
    assert "cassandra-all" in maven.pom_text("cassandra")


def test_missing_maven_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(availability.shutil, "which", lambda name: None)
    with pytest.raises(EngineUnavailableError, match="Maven"):
        maven.resolve(tmp_path, "kafka")
    ok, reason = availability.engines_available(tmp_path)
    assert not ok and "\n" not in reason


def test_missing_java_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(availability, "_candidates", lambda: [])
    with pytest.raises(EngineUnavailableError, match="Java 17"):
        availability.find_java()
