"""SyncAck in the sessions stage (issue 15, item 8): ``deviceAcked`` records of a batch become
the devices' stored sync progress (:mod:`chat_events.store.progress`).

The stage owns the user's partition of ``chat.user-events``, so it is the single writer of the
user's progress rows. Acks are collected and written together, but always *before* the next
session change of the batch is applied: an edge signing a device in waits until the workers
stored its session (``EdgeNode.await_session``), and then reads the device's progress, so every
ack published before that sign-in (the old socket's last one is published before its
``userDisconnected``) is in what it reads.

An ack is capped at the user's highest assigned seq (``max_user_seqs``): the edge pushes and
syncs only stored entries, so an honest ack never exceeds it, and a client's bogus one cannot
make a later resume skip seqs the server has not assigned yet.
"""

from __future__ import annotations

from chat_events.events.types import DeviceAcked
from chat_events.store.port import MessageStore
from chat_events.store.progress import DeviceProgress, advanced


class PendingAcks:
    """The acks of one batch not yet written; :meth:`flush` writes them."""

    __slots__ = ("_acks", "_store")

    def __init__(self, store: MessageStore) -> None:
        self._store = store
        self._acks: list[DeviceProgress] = []

    def add(self, user_id: str, event: DeviceAcked) -> None:
        self._acks.append(
            DeviceProgress(
                user_id=user_id, device_id=event.device_id, acked_seq=event.seq, acked_at_ms=event.received_at_ms
            )
        )

    def __len__(self) -> int:
        return len(self._acks)

    async def flush(self) -> None:
        """Write the collected acks (highest per device, capped, never lowering what is stored)."""
        if not self._acks:
            return
        acks, self._acks = self._acks, []
        ceilings = await self._store.max_user_seqs({a.user_id for a in acks})
        rows = advanced({}, acks, ceilings)
        if rows:
            await self._store.advance_device_progress(rows)
