"""SyncAck and delivery receipts in the sessions stage (issue 15, items 8 and 3): ``deviceAcked``
records of a batch become the devices' stored sync progress (:mod:`chat_events.store.progress`),
and what they deliver becomes ``deliveryReceiptDispatched`` for the senders.

The stage owns the user's partition of ``chat.user-events``, so it is the single writer of the
user's progress rows. Acks are collected and written together, but always *before* the next
session change of the batch is applied: an edge signing a device in waits until the workers
stored its session (``EdgeNode.await_session``), and then reads the device's progress, so every
ack published before that sign-in (the old socket's last one is published before its
``userDisconnected``) is in what it reads.

An ack is capped at the user's highest assigned seq (``max_user_seqs``): the edge pushes and
syncs only stored entries, so an honest ack never exceeds it, and a client's bogus one cannot
make a later resume skip seqs the server has not assigned yet.

**Delivered** means on at least one device of the recipient: the user's highest ack over all
devices is kept as the progress of the pseudo-device ``*``
(:data:`~chat_events.streams.conversation_logic.DELIVERED_MARK`). When an ack raises it from
``a`` to ``b``, the inbox entries ``a+1..b`` are newly delivered: per conversation the senders of
those messages learn the highest conversation seq delivered (1:1 conversations and groups up to
``CHAT_READ_RECEIPTS_MAX_GROUP`` members, as for read receipts). A replay finds the mark raised
already and sends nothing again: receipts are pushes (like typing), the stored progress is the
record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from chat_events.events.conversation_events import DeliveryReceiptDispatched
from chat_events.events.conversations import DIRECT_PREFIX
from chat_events.events.factory import new_envelope
from chat_events.events.types import DeviceAcked
from chat_events.store.models import InboxEntry
from chat_events.store.port import MessageStore
from chat_events.store.progress import DeviceProgress, advanced
from chat_events.streams.conversation_logic import DELIVERED_MARK, delivered_watermarks
from chat_events.streams.records import Incoming, Output, output_envelope_id

DELIVERED_SCAN_MAX = 5_000
"""Entries one ack looks at for delivery receipts at most (a device back after a long time)."""


class PendingAcks:
    """The acks of one batch not yet written; :meth:`flush` writes them and returns the receipts."""

    __slots__ = ("_acks", "_edge_topic", "_last", "_max_group", "_stage", "_store")

    def __init__(
        self, store: MessageStore, *, edge_topic: Callable[[str], str], stage: str, receipts_max_group: int = 100
    ) -> None:
        self._store = store
        self._edge_topic = edge_topic
        self._stage = stage
        self._max_group = receipts_max_group
        self._acks: list[DeviceProgress] = []
        self._last: Incoming | None = None

    def add(self, user_id: str, event: DeviceAcked, item: Incoming) -> None:
        self._acks.append(
            DeviceProgress(
                user_id=user_id, device_id=event.device_id, acked_seq=event.seq, acked_at_ms=event.received_at_ms
            )
        )
        self._last = item

    def __len__(self) -> int:
        return len(self._acks)

    async def flush(self) -> list[Output]:
        """Write the collected acks (highest per device, capped, never lowering what is stored)
        and the users' delivered marks; the delivery receipts they make."""
        if not self._acks:
            return []
        acks, self._acks = self._acks, []
        source = self._last
        users = {a.user_id for a in acks}
        ceilings, marks = await asyncio.gather(
            self._store.max_user_seqs(users), self._store.device_progress((u, DELIVERED_MARK) for u in users)
        )
        rows = advanced({}, acks, ceilings)
        if not rows:
            return []
        before = {u: marks[(u, DELIVERED_MARK)].acked_seq if (u, DELIVERED_MARK) in marks else 0 for u in users}
        tops: dict[str, int] = {}
        for row in rows:
            tops[row.user_id] = max(tops.get(row.user_id, 0), row.acked_seq)
        raised = {u: top for u, top in tops.items() if top > before[u]}
        mark_rows = [DeviceProgress(user_id=u, device_id=DELIVERED_MARK, acked_seq=top) for u, top in raised.items()]
        await self._store.advance_device_progress([*rows, *mark_rows])
        if not raised or source is None:
            return []
        return await self._receipts(source, before, raised)

    async def _receipts(self, source: Incoming, before: dict[str, int], raised: dict[str, int]) -> list[Output]:
        delivered: list[tuple[str, str, int, tuple[str, ...]]] = []
        for user_id, top in raised.items():
            entries = await self._entries(user_id, before[user_id], top)
            for conversation_id, (seq, senders) in delivered_watermarks(entries, user_id).items():
                delivered.append((user_id, conversation_id, seq, senders))
        groups = sorted({conv for _, conv, _, _ in delivered if not conv.startswith(DIRECT_PREFIX)})
        if groups:  # as for read receipts: none for groups above CHAT_READ_RECEIPTS_MAX_GROUP
            sizes = {g: len(m) for g, m in (await self._store.group_members(groups)).items()}
            delivered = [
                d for d in delivered if d[1].startswith(DIRECT_PREFIX) or sizes.get(d[1], 0) <= self._max_group
            ]
        if not delivered:
            return []
        sessions = await self._store.sessions_of({s for *_, senders in delivered for s in senders})
        outputs = []
        for user_id, conversation_id, seq, senders in delivered:
            by_edge: dict[str, list[str]] = {}
            for sender in senders:
                for edge_id in sorted({s.edge_id for s in sessions.get(sender, ())}):
                    by_edge.setdefault(edge_id, []).append(sender)
            for edge_id, recipients in sorted(by_edge.items()):
                event = DeliveryReceiptDispatched(
                    recipient_ids=tuple(recipients),
                    edge_id=edge_id,
                    conversation_id=conversation_id,
                    delivered_to=user_id,
                    delivered_seq=seq,
                )
                part = f"delivered/{user_id}/{conversation_id}/{edge_id}"
                envelope = new_envelope(
                    event,
                    user_id=recipients[0],
                    trace_id=source.envelope.trace_id,
                    envelope_id=output_envelope_id(source.envelope.id, self._stage, part),
                )
                outputs.append(Output(self._edge_topic(edge_id), recipients[0].encode(), envelope))
        return outputs

    async def _entries(self, user_id: str, after: int, top: int) -> list[InboxEntry]:
        """The user's inbox entries ``after+1..top`` (at most :data:`DELIVERED_SCAN_MAX`: the
        newest of a longer range, whose highest seqs are what the receipts say)."""
        start = max(after, top - DELIVERED_SCAN_MAX)
        found: list[InboxEntry] = []
        while start < top:
            page = await self._store.inbox_after(user_id, start, min(500, top - start))
            found += [e for e in page.items if e.user_seq <= top]
            if not page.items or not page.has_more:
                break
            start = page.items[-1].user_seq
        return found
