"""Whether the workers would register this edge's sessions now: the second half of ``/readyz``.

A sign-in is answered once the workers' sessions stage has stored the session
(:meth:`EdgeNode.await_session`, up to 5 s), so an edge whose process is up but whose workers
have not joined their group yet would make every sign-in wait 5 s and answer with a session the
workers do not know. The edge therefore counts as ready only while the workers' consumer group
(``CHAT_WORKER_APP_ID``) is stable and its members own every partition of
``chat.user-events``: then a ``userConnected`` published now is handled by a running sessions
stage. It reads that from the group coordinator (DescribeGroups), every ``CHECK_S`` (more often
while not ready).

The embedded broker (Tansu) describes a group's members without their assignments: there a
stable group with members counts (every worker subscribes to every stage's topic, so a stable
group has the sessions stage assigned). A worker killed with ``kill -9`` stays a member until
its session times out (``CHAT_WORKER_SESSION_TIMEOUT_S``); its partitions then move.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

CHECK_S = 1.0
UNREADY_CHECK_S = 0.25


def sessions_stage_owned(state: str, assignments: Sequence[bytes], topic: str, partitions: Iterable[int]) -> bool:
    """Whether a consumer group in ``state`` whose members hold ``assignments`` (the raw
    consumer-protocol bytes, one per member; empty where the broker does not report them) owns
    every one of ``partitions`` of ``topic`` (pure)."""
    if state != "Stable" or not assignments:
        return False
    reported = [raw for raw in assignments if raw]
    if not reported:  # the broker does not say who owns what (the embedded one)
        return True
    owned: set[int] = set()
    for raw in reported:
        try:
            decoded = ConsumerProtocolMemberAssignment.decode(raw)
        except Exception:  # not the consumer protocol: nothing known to be owned
            continue
        for name, numbers in decoded.assignment:
            if name == topic:
                owned.update(numbers)
    return set(partitions) <= owned


async def describe_group(admin: AIOKafkaAdminClient, group_id: str) -> tuple[str, list[bytes]]:
    """The group's state and its members' raw assignments ("Dead" and none if unknown)."""
    for response in await admin.describe_consumer_groups([group_id]):
        for group in response.groups:
            error_code, name, state, _protocol_type, _protocol, members = group[:6]
            if name == group_id and error_code == 0:
                return str(state), [bytes(member[4] or b"") for member in members]
    return "Dead", []


class WorkerWatch:
    """Keeps :attr:`ready` current while :meth:`run` runs (a task of the edge)."""

    def __init__(
        self,
        group_id: str,
        topic: str,
        *,
        start_admin: Callable[[], Awaitable[AIOKafkaAdminClient]],
        partitions: Callable[[], Awaitable[list[int]]],
    ) -> None:
        self.group_id = group_id
        self.topic = topic
        self.ready = False
        self._start_admin = start_admin
        self._partitions = partitions

    async def check(self, admin: AIOKafkaAdminClient) -> bool:
        state, assignments = await describe_group(admin, self.group_id)
        return sessions_stage_owned(state, assignments, self.topic, await self._partitions())

    async def run(self) -> None:
        admin: AIOKafkaAdminClient | None = None
        try:
            while True:
                ready = False
                try:
                    if admin is None:
                        admin = await self._start_admin()
                    ready = await self.check(admin)
                except Exception as exc:  # never let the watch die: checked again shortly
                    log.debug("reading the workers' group failed: %r", exc)
                    if not isinstance(exc, KafkaError) and admin is not None:  # start afresh next time
                        with contextlib.suppress(Exception):
                            await admin.close()
                        admin = None
                if ready != self.ready:
                    log.info("workers' sessions stage %s", "running: ready" if ready else "not running: not ready")
                self.ready = ready
                await asyncio.sleep(CHECK_S if ready else UNREADY_CHECK_S)
        finally:
            if admin is not None:
                await admin.close()
