"""Who receives a message and how (write or read fan-out): pure decisions, no IO."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

FanoutMode = Literal["write", "read"]


@dataclass(frozen=True, slots=True)
class FanoutPlan:
    """``inbox_recipients`` each get an inbox copy (write fan-out). In read fan-out mode the
    list holds only the sender (for their other devices); members sync the room by its seq."""

    mode: FanoutMode
    inbox_recipients: tuple[str, ...]


def recipients_of(
    *,
    sender_id: str,
    target_type: str,
    target_id: str,
    group_members: Iterable[str],
    blockers_of_sender: Iterable[str],
    kind: str = "message",
    named: Iterable[str] = (),
) -> tuple[str, ...]:
    """The users whose inboxes get the message, sender first, then sorted.

    * 1:1: the target; a group: its stored active members. A message's own ``target_members``
      are a client's claim and never widen the audience.
    * Users who blocked the sender are removed (the sender's own copy stays).
    * The sender is always included, so their other devices receive what they sent.
    * ``kind``: a ``delete_for_me`` entry reaches only its sender; a ``system`` message (a group
      change) reaches every member, blocks or not, and the users it ``named`` (its mentions: a
      member just removed is told so, as WhatsApp does).
    """
    if kind == "delete_for_me":
        return (sender_id,)
    if kind == "system":
        blockers_of_sender = ()
    others = {target_id} if target_type == "user" else set(group_members)
    if kind == "system":
        others |= set(named)
    others -= set(blockers_of_sender)
    others.discard(sender_id)
    return (sender_id, *sorted(others))


def plan_fanout(recipients: tuple[str, ...], *, target_type: str, write_max_members: int) -> FanoutPlan:
    """Write fan-out for 1:1 and groups up to ``write_max_members``; above it, read fan-out."""
    if target_type == "group" and len(recipients) > write_max_members:
        return FanoutPlan("read", recipients[:1])
    return FanoutPlan("write", recipients)


def may_post(sender_id: str, *, target_type: str, group_members: frozenset[str], kind: str = "message") -> bool:
    """Only members post in a group (1:1 is always allowed; blocks are applied per recipient).
    A system message is the workers' (its sender may just have left), and anyone may still hide
    a message from their own view (``delete_for_me``)."""
    return target_type != "group" or sender_id in group_members or kind in ("system", "delete_for_me")
