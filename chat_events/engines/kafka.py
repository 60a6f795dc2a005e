"""One Apache Kafka node in KRaft mode (broker and controller combined) on loopback.

``start()`` formats a fresh data folder (``StorageTool format --standalone`` with a new cluster
id) unless it is already formatted, then runs ``kafka.Kafka`` and returns once the broker
answers a metadata request naming itself. ``kill()`` then ``start()`` restarts it on the same
data and ports (the broker-kill fault test). Replication factors are 1 (one node), and a new
group's first rebalance is not delayed.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from chat_events.engines import maven
from chat_events.engines.availability import EngineUnavailableError, find_java
from chat_events.engines.process import HOST, EngineServer, JvmProcess, free_port, port_accepts, tail

LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = OUT
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
"""


def server_properties(data_dir: Path, port: int, controller_port: int) -> str:
    """The node's ``server.properties`` (pure: tests read it)."""
    values = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir / "log"),
        "num.partitions": "8",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "8",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": "24",
    }
    return "".join(f"{key}={value}\n" for key, value in values.items())


def new_cluster_id(random_bytes: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 characters).
    Never one starting with ``-``: the storage tool would take it for an option (one in 64 of
    them did; Kafka's own ``Uuid.randomUuid`` draws again the same way)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(random_bytes()).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def answers_metadata(bootstrap_servers: str, timeout_s: float = 3.0) -> bool:
    """True when the broker answers a metadata request listing at least one broker. Runs its own
    event loop in a thread, so it works from sync code and inside a running loop alike."""
    from aiokafka.client import AIOKafkaClient

    async def probe() -> bool:
        client = AIOKafkaClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout_s * 1000))
        try:
            await asyncio.wait_for(client.bootstrap(), timeout_s)
            return bool(client.cluster.brokers())
        except Exception:
            return False
        finally:
            await client.close()

    answer: list[bool] = [False]
    thread = threading.Thread(target=lambda: answer.__setitem__(0, asyncio.run(probe())), daemon=True)
    thread.start()
    thread.join(timeout_s + 2)
    return answer[0]


class KafkaServer(EngineServer):
    """A Kafka node under ``work_dir`` (data, config, ``kafka.log``). Ports 0 = free ports."""

    name = "kafka"
    stop_timeout_s = 30.0

    def __init__(self, work_dir: Path, *, port: int = 0, heap_mb: int = 512, cache_dir: Path | None = None) -> None:
        super().__init__(work_dir, port=port, heap_mb=heap_mb, cache_dir=cache_dir)
        self.controller_port = 0

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self, timeout_s: float = 90.0) -> str:
        java = find_java()
        classpath = ":".join(str(jar) for jar in maven.classpath(self._cache_dir, "kafka"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.controller_port = self.controller_port or free_port()
        properties = self.work_dir / "server.properties"
        properties.write_text(server_properties(self.work_dir, self.port, self.controller_port), encoding="utf-8")
        log4j = self.work_dir / "log4j2.properties"
        log4j.write_text(LOG4J2, encoding="utf-8")
        base = [java.executable, "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath]
        if not (self.work_dir / "log" / "meta.properties").is_file():
            fmt_args = ["-t", new_cluster_id(), "-c", str(properties)]
            fmt = JvmProcess(
                "kafka storage format",
                [*base, "-Xmx256m", "kafka.tools.StorageTool", "format", "--standalone", *fmt_args],
                self.log_path,
                cwd=self.work_dir,
            )
            fmt.start()
            code = fmt.wait_exit(120)
            if code != 0:
                raise EngineUnavailableError(f"kafka storage format failed ({code}): {tail(self.log_path)}")
        heap = f"-Xmx{self.heap_mb}m"
        jvm = [heap, f"-Xms{self.heap_mb}m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:+ExitOnOutOfMemoryError"]
        self._run(
            [*base, *jvm, "kafka.Kafka", str(properties)],
            lambda: port_accepts(self.port) and answers_metadata(self.bootstrap_servers),
            timeout_s,
            f"answering on {self.bootstrap_servers}",
        )
        return self.bootstrap_servers
