"""One Apache Cassandra 5.0 node on loopback, in the foreground (``CassandraDaemon``).

Java 17 flags are those of Cassandra's own ``conf/jvm17-server.options`` (G1, the JPMS
``--add-exports``/``--add-opens`` set, Netty's options), plus the jamm agent Cassandra measures
memory with. The configuration is a minimal ``cassandra.yaml`` (SimpleSnitch, one token, no
auto snapshots, no JMX) with every folder under ``work_dir``. Ready means a CQL client is
answered (``SELECT release_version FROM system.local``), never a sleep.
"""

from __future__ import annotations

from pathlib import Path

from chat_events.engines import maven
from chat_events.engines.availability import EngineUnavailableError, find_java
from chat_events.engines.process import HOST, EngineServer, free_port, port_accepts

JVM17_OPTIONS = [
    "-XX:+UseG1GC",
    "-XX:+ParallelRefProcEnabled",
    "-XX:MaxTenuringThreshold=1",
    "-XX:G1HeapRegionSize=16m",
    "-XX:G1RSetUpdatingPauseTimePercent=5",
    "-XX:MaxGCPauseMillis=300",
    "-XX:InitiatingHeapOccupancyPercent=70",
    "-Djdk.attach.allowAttachSelf=true",
    *[
        f"--add-exports={module}=ALL-UNNAMED"
        for module in (
            "java.base/jdk.internal.misc",
            "java.management.rmi/com.sun.jmx.remote.internal.rmi",
            "java.rmi/sun.rmi.registry",
            "java.rmi/sun.rmi.server",
            "java.sql/java.sql",
            "java.base/java.lang.ref",
            "jdk.unsupported/sun.misc",
            "jdk.compiler/com.sun.tools.javac.file",
            "jdk.attach/sun.tools.attach",
        )
    ],
    *[
        f"--add-opens={module}=ALL-UNNAMED"
        for module in (
            "java.base/java.lang.module",
            "java.base/jdk.internal.loader",
            "java.base/jdk.internal.ref",
            "java.base/jdk.internal.reflect",
            "java.base/jdk.internal.math",
            "java.base/jdk.internal.module",
            "java.base/jdk.internal.util.jar",
            "jdk.management/com.sun.management.internal",
            "java.base/sun.nio.ch",
            "java.base/java.io",
            "java.base/java.lang.reflect",
            "jdk.compiler/com.sun.tools.javac",
            "java.base/java.lang",
            "java.base/java.util",
        )
    ],
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
]
"""From Cassandra 5.0's ``conf/jvm17-server.options``."""

SERVER_OPTIONS = [
    "-ea",
    "-Xss256k",
    "-XX:+HeapDumpOnOutOfMemoryError",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:+PerfDisableSharedMem",
    "-Djava.net.preferIPv4Stack=true",
    "-Dcassandra-foreground=yes",
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",
    "-Dcassandra.ring_delay_ms=100",
    "-Dcassandra.superuser_setup_delay_ms=0",
]
"""From ``conf/jvm-server.options`` (the subset that matters here), plus the fast single-node start."""

LOGBACK = """\
<configuration>
  <appender name="OUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="OUT"/></root>
  <logger name="org.apache.cassandra.db.ColumnFamilyStore" level="WARN"/>
  <logger name="org.apache.cassandra.db.compaction" level="WARN"/>
</configuration>
"""


def cassandra_yaml(work_dir: Path, native_port: int, storage_port: int) -> str:
    """The node's ``cassandra.yaml`` (pure: tests read it)."""
    data = work_dir / "data"
    return f"""\
cluster_name: chat-events
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "{HOST}:{storage_port}"
listen_address: {HOST}
rpc_address: {HOST}
storage_port: {storage_port}
native_transport_port: {native_port}
start_native_transport: true
data_file_directories: [{data / "data"}]
commitlog_directory: {data / "commitlog"}
saved_caches_directory: {data / "saved_caches"}
hints_directory: {data / "hints"}
cdc_raw_directory: {data / "cdc_raw"}
commitlog_sync: periodic
commitlog_sync_period: 10000ms
auto_snapshot: false
snapshot_before_compaction: false
storage_compatibility_mode: NONE
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
disk_failure_policy: stop
commit_failure_policy: stop
batch_size_warn_threshold: 48KiB
unlogged_batch_across_partitions_warn_threshold: 1000
"""


def answers_cql(port: int, timeout_s: float = 5.0) -> bool:
    """True when a CQL client is answered on ``port``."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import RoundRobinPolicy

    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=timeout_s)
    cluster = Cluster(
        [HOST],
        port=port,
        connect_timeout=timeout_s,
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )
    try:
        session = cluster.connect()
        return session.execute("SELECT release_version FROM system.local").one() is not None
    except Exception:
        return False
    finally:
        cluster.shutdown()


class CassandraServer(EngineServer):
    """A Cassandra node under ``work_dir`` (data, ``conf/``, ``cassandra.log``). Ports 0 = free."""

    name = "cassandra"
    stop_timeout_s = 60.0

    def __init__(self, work_dir: Path, *, port: int = 0, heap_mb: int = 1024, cache_dir: Path | None = None) -> None:
        super().__init__(work_dir, port=port, heap_mb=heap_mb, cache_dir=cache_dir)
        self.storage_port = 0

    @property
    def contact_point(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self, timeout_s: float = 180.0) -> str:
        java = find_java()
        jars = maven.classpath(self._cache_dir, "cassandra")
        jamm = [jar for jar in jars if jar.name.startswith("jamm-")]
        if not jamm:
            raise EngineUnavailableError("the Cassandra closure has no jamm jar (its memory meter agent)")
        self.port = self.port or free_port()
        self.storage_port = self.storage_port or free_port()
        conf = self.work_dir / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "cassandra.yaml").write_text(
            cassandra_yaml(self.work_dir, self.port, self.storage_port), encoding="utf-8"
        )
        (conf / "logback.xml").write_text(LOGBACK, encoding="utf-8")
        heap = [f"-Xms{self.heap_mb}m", f"-Xmx{self.heap_mb}m", f"-Xmn{max(64, self.heap_mb // 4)}m"]
        argv = [
            java.executable,
            *heap,
            *JVM17_OPTIONS,
            *SERVER_OPTIONS,
            f"-javaagent:{jamm[0]}",
            f"-Dcassandra.config=file://{conf / 'cassandra.yaml'}",
            f"-Dlogback.configurationFile={conf / 'logback.xml'}",
            f"-Dcassandra.storagedir={self.work_dir / 'data'}",
            f"-Dcassandra.logdir={self.work_dir}",
            "-cp",
            ":".join([str(conf), *(str(jar) for jar in jars)]),
            "org.apache.cassandra.service.CassandraDaemon",
        ]
        self._run(
            argv, lambda: port_accepts(self.port) and answers_cql(self.port), timeout_s, f"answering CQL on {self.port}"
        )
        return self.contact_point
