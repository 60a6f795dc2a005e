"""Wake-up datagrams between local producers and idle consumers of one broker (the embedded one).

Why: the embedded broker's fetch long-poll never returns early when data arrives, so a consumer
that polls it with a short wait (the per-hop latency) sends ~100 fetches a second even when
nothing flows, and the broker spends a third of a core answering them. With a long wait the idle
cost goes, but every hop then waits that long. So an idle consumer stops fetching
(:mod:`chat_events.kafka.idle_pacer`) and a producer, on sending, rings the consumers' doorbells:
one UDP datagram on loopback to each, which makes them fetch again at once.

Discovery: a consumer's :class:`Doorbell` binds ``127.0.0.1:<free port>`` and writes a file
``<pid>-<port>`` listing the topics it reads (empty: any) in :func:`registry_dir` of its broker (a
per-user directory under the temp dir, mode 0700, keyed by the bootstrap address, so every process
using that broker finds every other, whatever their data directories). A :class:`Ringer` lists
that directory at most every ``RESCAN_S`` and, for a record of topic T, sends one datagram to each
doorbell of T at most every ``MIN_RING_INTERVAL_S`` per doorbell.

Why rate-limited rings cannot strand a record: a ring counts as activity for the consumer, which
then keeps fetching for its idle delay (never below ``RESCAN_S``, far above the ring interval);
a consumer stops fetching only after that long without rings or records, so any send after it
stopped is at least ``MIN_RING_INTERVAL_S`` after the previous ring to it and rings it. A consumer registered after a
ringer's last listing is still fetching (it starts so) until the ringer lists again. A datagram
that is lost, or a producer that does not ring (another client), costs latency, never records:
an idle consumer still probes every ``CHAT_KAFKA_IDLE_PROBE_MS``. A file left by a killed process
names a closed port: datagrams to it are dropped, and the next :class:`Doorbell` opened on this
broker removes files of processes that are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

HOST = "127.0.0.1"
RESCAN_S = 0.2
"""Longest a ringer uses its list of doorbells before listing the directory again."""
MIN_RING_INTERVAL_S = 0.02
"""Shortest time between two rounds of datagrams from one ringer."""
DATAGRAM = b"ring"


def registry_dir(bootstrap_servers: str, root: Path | None = None) -> Path:
    """Where the doorbells of consumers of ``bootstrap_servers`` are listed (not created)."""
    base = root if root is not None else Path(tempfile.gettempdir()) / f"chat-events-{os.getuid()}"
    return base / "doorbells" / re.sub(r"[^A-Za-z0-9.-]+", "_", bootstrap_servers)


def parse_entry(name: str) -> tuple[int, int] | None:
    """``<pid>-<port>`` -> (pid, port); anything else -> None."""
    match = re.fullmatch(r"(\d+)-(\d+)", name)
    if match is None:
        return None
    pid, port = int(match[1]), int(match[2])
    return (pid, port) if 0 < port < 65536 else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_ring: Callable[[], None]) -> None:
        self._on_ring = on_ring

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self._on_ring()


class Doorbell:
    """A consumer's doorbell: calls ``on_ring`` (on the event loop) for every datagram received.
    ``await open()`` binds and registers it, for sends to ``topics`` (empty: to any topic);
    ``close()`` unregisters it."""

    def __init__(self, directory: Path, on_ring: Callable[[], None], topics: Iterable[str] = ()) -> None:
        self._directory = directory
        self._on_ring = on_ring
        self._topics = sorted(set(topics))
        self._transport: asyncio.DatagramTransport | None = None
        self._entry: Path | None = None

    @property
    def port(self) -> int | None:
        if self._transport is None:
            return None
        return int(self._transport.get_extra_info("sockname")[1])

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self._on_ring), local_addr=(HOST, 0))
        self._transport = transport
        self._directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._prune()
        name = f"{os.getpid()}-{self.port}"
        draft = self._directory / f".{name}"  # not an entry until renamed: never read half-written
        draft.write_text("".join(f"{topic}\n" for topic in self._topics), encoding="utf-8")
        entry = self._directory / name
        draft.rename(entry)
        self._entry = entry

    def _prune(self) -> None:
        """Remove the entries of processes that are gone (a killed process leaves its file)."""
        with contextlib.suppress(OSError):
            for path in self._directory.iterdir():
                parsed = parse_entry(path.name)
                if parsed is not None and not _alive(parsed[0]):
                    with contextlib.suppress(OSError):
                        path.unlink()

    def close(self) -> None:
        entry, self._entry = self._entry, None
        if entry is not None:
            with contextlib.suppress(OSError):
                entry.unlink()
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()


class Ringer:
    """A producer's side: :meth:`ring` with the topic of every record handed to the broker. Cheap
    per record (a clock read and a dict lookup; a datagram per interested doorbell at most every
    ``MIN_RING_INTERVAL_S``); never raises."""

    def __init__(self, directory: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._directory = directory
        self._clock = clock
        self._any: list[int] = []
        """Doorbells of consumers that asked for every topic."""
        self._by_topic: dict[str, list[int]] = {}
        self._rung_at: dict[int, float] = {}
        self._listed_at = float("-inf")
        self._socket: socket.socket | None = None

    def ring(self, topic: str) -> None:
        now = self._clock()
        if now - self._listed_at >= RESCAN_S:
            self._listed_at = now
            self._list()
        ports = self._by_topic.get(topic)
        for port in self._any if ports is None else (*self._any, *ports):
            if now - self._rung_at.get(port, float("-inf")) >= MIN_RING_INTERVAL_S:
                self._rung_at[port] = now
                self._send(port)

    def _send(self, port: int) -> None:
        sock = self._socket
        if sock is None:
            sock = self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
        with contextlib.suppress(OSError):  # a closed port, a full buffer: the probe covers it
            sock.sendto(DATAGRAM, (HOST, port))

    def _list(self) -> None:
        every: list[int] = []
        by_topic: dict[str, list[int]] = {}
        with contextlib.suppress(OSError):
            for name in os.listdir(self._directory):
                parsed = parse_entry(name)
                if parsed is None:
                    continue
                try:
                    topics = (self._directory / name).read_text(encoding="utf-8").split()
                except OSError:
                    continue  # removed meanwhile
                if not topics:
                    every.append(parsed[1])
                for topic in topics:
                    by_topic.setdefault(topic, []).append(parsed[1])
        self._any, self._by_topic = every, by_topic
        live = set(every).union(*by_topic.values())
        self._rung_at = {port: at for port, at in self._rung_at.items() if port in live}

    def close(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()
