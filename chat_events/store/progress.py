"""A device's sync progress (SyncAck, issue 15 item 8): the highest per-user seq one device of a
user has acknowledged (the ``ack`` frame, published by the edge as ``deviceAcked``). Plain values
and the pure decisions on them; the store keeps one row per ``(user_id, device_id)``.

Progress never goes backwards: an ack at or below the stored seq changes nothing, so a replayed
or reordered ``deviceAcked`` is a no-op. An ack above the user's highest assigned seq (a client
acking what it was never sent) is capped there, so the stored progress never claims seqs the
server has not assigned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DeviceKey = tuple[str, str]
"""``(user_id, device_id)``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceProgress:
    """How far one device of a user has acked: ``acked_seq`` (a per-user seq), when it was
    received (``acked_at_ms``, the edge's clock)."""

    user_id: str
    device_id: str
    acked_seq: int
    acked_at_ms: int = 0

    @property
    def key(self) -> DeviceKey:
        return (self.user_id, self.device_id)


def advanced(
    stored: Mapping[DeviceKey, DeviceProgress],
    acks: Iterable[DeviceProgress],
    ceilings: Mapping[str, int] | None = None,
) -> list[DeviceProgress]:
    """The rows to write for ``acks`` over the ``stored`` rows: per device the highest ack
    (capped at its user's ``ceilings`` entry when given), only where it is above what is
    stored. Ties keep the first ack's time. Order: first appearance of each device."""
    best: dict[DeviceKey, DeviceProgress] = {}
    for ack in acks:
        seq = ack.acked_seq if ceilings is None else min(ack.acked_seq, ceilings.get(ack.user_id, 0))
        current = best.get(ack.key)
        if current is None or seq > current.acked_seq:
            best[ack.key] = DeviceProgress(
                user_id=ack.user_id, device_id=ack.device_id, acked_seq=seq, acked_at_ms=ack.acked_at_ms
            )
    out: list[DeviceProgress] = []
    for key, row in best.items():
        old = stored.get(key)
        if row.acked_seq > (old.acked_seq if old is not None else 0):
            out.append(row)
    return out


def resume_seq(acked_seq: int, last_user_seq: int) -> int:
    """Where a device with stored progress ``acked_seq`` resumes when the user's highest seq is
    ``last_user_seq``: at its progress, never beyond what exists (a store that lost seqs)."""
    return max(0, min(acked_seq, last_user_seq))


def sync_start(requested: int | None, acked_on_socket: int, stored_at_sign_in: int) -> int:
    """The seq a ``sync`` reads after: the one the client gave, else the device's progress
    (what this socket acked, or what the device had stored when it signed in, the higher)."""
    if requested is not None:
        return requested
    return max(acked_on_socket, stored_at_sign_in)
