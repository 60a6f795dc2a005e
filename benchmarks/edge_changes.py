"""W2 with changes (issue 16's benchmark): a share of the group sends replaced by changes to
messages already delivered — edits and reactions — for ``benchmarks.bench_edge --only w2changes``.

Each slot of the W2 load (closed or open loop) is, with probability ``share``, a change instead
of a send: half of them an edit (``ChatClient.edit``) of one of the sender's own recent messages,
the others a reaction (``ChatClient.react``) on any recent message of the group, sometimes
(:data:`REMOVE_SHARE`) taking back one of the sender's own earlier reactions. A change needs a
stored message, so targets are picked among the messages the sending client has already
received (its own inbox copies for edits); before it has any, the slot stays a send (counted as
``no_target``). Each change arrives at every other member as a delivery of its own
(``message["kind"]`` in :data:`CHANGE_KINDS`), counted like a message's (49 per change).

Latency: a reaction's delivery carries no send time in its content, so the sender keeps
``change_id -> (key, send time)`` from the change's answer; the delivered entry's
``message["message_id"]`` is that ``change_id``. A delivery that arrives before its answer (the
answer and the push race) is held and counted once the answer names it, with its own receive time.
"""

from __future__ import annotations

import asyncio
import random
import time
from array import array
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Literal

from benchmarks.edge_load import ClientPool, SendStats, content, latency_summary, send_one
from chat_events.client import ChatClient, ChatClientError
from chat_events.client.models import TargetType

CHANGE_KINDS = frozenset({"edit", "reaction_add", "reaction_remove"})
"""The change entries this load makes, as deliveries name them (``message["kind"]``)."""
CHANGE_SHARE = 0.10
"""Share of the W2 sends replaced by changes (issue 16: "W2 with 10% of traffic being edits/reactions")."""
EDIT_SHARE = 0.5
"""Share of the changes that are edits (when the sender has a message of its own to edit)."""
REMOVE_SHARE = 0.3
"""Share of the reactions that take back one of the sender's own (when it has one)."""
RECENT = 50
"""Messages per client remembered as change targets (the most recent ones received)."""
EMOJIS = ("\U0001f44d", "\u2764\ufe0f", "\U0001f602", "\U0001f389", "\U0001f440", "\U0001f64f")

PlanKind = Literal["send", "edit", "reaction_add", "reaction_remove"]


@dataclass(frozen=True, slots=True)
class Plan:
    """What one slot of the load does: a plain send, or a change of ``message_id``."""

    kind: PlanKind
    message_id: str = ""
    emoji: str = ""
    no_target: bool = False
    """A change was drawn but the client had received nothing it could change yet."""


@dataclass(slots=True)
class Seen:
    """What one client has received: recent group messages (any sender), its own among them,
    and the reactions it added and has not taken back (``(message_id, emoji)``, oldest first)."""

    own: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT))
    group: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT))
    reactions: dict[tuple[str, str], None] = field(default_factory=dict)

    def received(self, message_id: str, *, own: bool) -> None:
        self.group.append(message_id)
        if own:
            self.own.append(message_id)


def plan_next(rng: random.Random, seen: Seen, share: float) -> Plan:
    """The next slot for a client that has ``seen`` this (pure but for ``rng``): a send with
    probability 1 - ``share``, else an edit or a reaction on a message it has received."""
    if rng.random() >= share:
        return Plan("send")
    wants_edit = rng.random() < EDIT_SHARE
    if wants_edit and seen.own:
        return Plan("edit", rng.choice(seen.own))
    if seen.reactions and rng.random() < REMOVE_SHARE:
        message_id, emoji = rng.choice(list(seen.reactions))
        return Plan("reaction_remove", message_id, emoji)
    if seen.group:
        message_id = rng.choice(seen.group)
        free = [e for e in EMOJIS if (message_id, e) not in seen.reactions]
        if free:
            return Plan("reaction_add", message_id, rng.choice(free))
    if seen.own:
        return Plan("edit", rng.choice(seen.own))
    return Plan("send", no_target=True)


def in_window(samples: array[int], recv: array[int], window_ns: tuple[int, int]) -> list[int]:
    """The samples whose receive time is in ``[start, end)``."""
    start, end = window_ns
    return [lat for t, lat in zip(recv, samples, strict=True) if start <= t < end]


class ChangeMix:
    """The load's sends (:meth:`send`, a :class:`benchmarks.edge_load.SendFn`) and the pool's
    delivery observer (:meth:`observe`, a :data:`benchmarks.edge_load.Observer`) for one phase
    after another on one :class:`ClientPool`."""

    def __init__(self, pool: ClientPool, share: float = CHANGE_SHARE, *, seed: int = 16) -> None:
        self.pool = pool
        self.share = share
        self.rng = random.Random(seed)
        self.seen: defaultdict[str, Seen] = defaultdict(Seen)
        self.sent: dict[str, tuple[int, int]] = {}
        """change_id -> (message key, send perf_counter_ns), from the change's answer."""
        self.early: defaultdict[str, list[tuple[int, int]]] = defaultdict(list)
        """change_id -> [(receive ns, user index)] delivered before the answer named them."""
        self.counts: Counter[str] = Counter()
        self.early_deliveries = 0
        self.recv_ns: array[int] = array("q")
        self.latency_ns: array[int] = array("q")
        self.answered_ns: array[int] = array("q")
        self.answer_latency_ns: array[int] = array("q")
        self._users: dict[int, str] = {}

    # --- receiving ------------------------------------------------------------------------

    def observe(self, user: str, index: int, message: dict[str, Any], now_ns: int) -> bool:
        """Remember received messages as targets; take change entries (True), counted as
        deliveries of their change's key; leave everything else to the pool (False)."""
        kind = message.get("kind", "message")
        own = message.get("sender_id") == user
        if kind == "message":
            self.seen[user].received(str(message["message_id"]), own=own)
            return False
        if kind not in CHANGE_KINDS:
            return False
        if own:
            self.pool.recorder.own_copies += 1
            return True
        change_id = str(message["message_id"])
        known = self.sent.get(change_id)
        if known is None:
            self.early[change_id].append((now_ns, index))
        else:
            self._record(known, now_ns, index)
        return True

    def _record(self, known: tuple[int, int], now_ns: int, index: int) -> None:
        key, sent_ns = known
        self.pool.recorder.add(now_ns, key, sent_ns, index)
        self.recv_ns.append(now_ns)
        self.latency_ns.append(now_ns - sent_ns)
        if self.pool.on_delivery is not None:
            self.pool.on_delivery(key)

    # --- sending --------------------------------------------------------------------------

    def _user_of(self, client: ChatClient) -> str:
        if id(client) not in self._users:
            self._users = {id(c): u for u, c in self.pool.clients.items()}
        return self._users[id(client)]

    async def send(
        self, client: ChatClient, target_type: TargetType, target: str, key: int, stats: SendStats, *, timeout_s: float
    ) -> bool:
        """One slot: a send (:func:`send_one`) or a change, timed and counted the same way."""
        seen = self.seen[self._user_of(client)]
        plan = plan_next(self.rng, seen, self.share)
        self.counts[plan.kind] += 1
        self.counts["no_target"] += plan.no_target
        if plan.kind == "send":
            return await send_one(client, target_type, target, key, stats, timeout_s=timeout_s)
        reaction = (plan.message_id, plan.emoji)
        if plan.kind == "reaction_add":
            seen.reactions[reaction] = None  # before the answer: no second add of it meanwhile
        elif plan.kind == "reaction_remove":
            del seen.reactions[reaction]
        sent_ns = time.perf_counter_ns()
        stats.issued += 1
        try:
            async with asyncio.timeout(timeout_s):
                if plan.kind == "edit":
                    answer = await client.edit(plan.message_id, content(key, sent_ns))
                else:
                    answer = await client.react(plan.message_id, plan.emoji, remove=plan.kind == "reaction_remove")
        except (ChatClientError, TimeoutError) as exc:
            code = getattr(exc, "code", None)
            stats.errors[f"{plan.kind} {type(exc).__name__}" + (f"({code})" if code is not None else "")] += 1
            if plan.kind == "reaction_add":
                seen.reactions.pop(reaction, None)
            elif plan.kind == "reaction_remove":
                seen.reactions[reaction] = None
            return False
        done = time.perf_counter_ns()
        change_id = str(answer["change_id"])
        self.sent[change_id] = known = (key, sent_ns)
        stats.acked_ns.append(done)
        stats.ack_latency_ns.append(done - sent_ns)
        stats.acked_keys.append(key)
        self.answered_ns.append(done)
        self.answer_latency_ns.append(done - sent_ns)
        for now_ns, index in self.early.pop(change_id, ()):
            self.early_deliveries += 1
            self._record(known, now_ns, index)
        return True

    # --- figures --------------------------------------------------------------------------

    def phase_summary(self, window_ns: tuple[int, int]) -> dict[str, Any]:
        """What the slots since the last summary were, and the latency of the change
        deliveries received in ``window_ns`` alone (and of the changes' answers); starts the
        next phase's counts."""
        out = {
            "share": self.share,
            "slots": dict(self.counts),
            "changes_answered": len(self.sent),
            "delivered_before_answer": self.early_deliveries,
            "unmatched_deliveries": sum(len(v) for v in self.early.values()),
            "latency": latency_summary(in_window(self.latency_ns, self.recv_ns, window_ns)),
            "answer_latency": latency_summary(in_window(self.answer_latency_ns, self.answered_ns, window_ns)),
        }
        self.counts.clear()
        self.sent.clear()
        self.early.clear()
        self.early_deliveries = 0
        self.recv_ns, self.latency_ns = array("q"), array("q")
        self.answered_ns, self.answer_latency_ns = array("q"), array("q")
        return out
