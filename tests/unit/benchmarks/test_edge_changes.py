"""W2 with changes (benchmarks.edge_changes, issue 16): what a slot becomes, how change
deliveries are matched to their send, and the W2 + changes rows of the issue's table."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from benchmarks.edge_changes import EMOJIS, ChangeMix, Plan, Seen, plan_next
from benchmarks.edge_load import ClientPool, SendStats
from benchmarks.workload import issue_figures, phases


def plans(seen: Seen, share: float, n: int = 2_000, seed: int = 1) -> Counter[str]:
    rng = random.Random(seed)
    return Counter(plan_next(rng, seen, share).kind for _ in range(n))


def test_nothing_received_yet_stays_a_send() -> None:
    rng = random.Random(3)
    drawn = [plan_next(rng, Seen(), 1.0) for _ in range(20)]
    assert all(p == Plan("send", no_target=True) for p in drawn)


def test_the_share_of_changes_and_their_kinds() -> None:
    seen = Seen()
    for i in range(10):
        seen.received(f"m{i}", own=i % 2 == 0)
    seen.reactions[("m1", EMOJIS[0])] = None
    kinds = plans(seen, 0.1)
    changes = kinds["edit"] + kinds["reaction_add"] + kinds["reaction_remove"]
    assert 150 <= changes <= 250  # ~10 % of 2,000
    assert kinds["edit"] and kinds["reaction_add"] and kinds["reaction_remove"]


def test_edits_only_the_senders_own_messages_and_reactions_any_received() -> None:
    seen = Seen()
    seen.received("mine", own=True)
    seen.received("theirs", own=False)
    rng = random.Random(5)
    drawn = [plan_next(rng, seen, 1.0) for _ in range(500)]
    assert {p.message_id for p in drawn if p.kind == "edit"} == {"mine"}
    assert {p.message_id for p in drawn if p.kind == "reaction_add"} == {"mine", "theirs"}
    assert not [p for p in drawn if p.kind == "reaction_remove"]  # nothing added yet


def test_a_reaction_is_not_added_twice_and_removes_take_back_own_reactions() -> None:
    seen = Seen()
    seen.received("theirs", own=False)
    for emoji in EMOJIS:
        seen.reactions[("theirs", emoji)] = None
    rng = random.Random(7)
    drawn = [plan_next(rng, seen, 1.0) for _ in range(200)]
    assert not [p for p in drawn if p.kind == "reaction_add"]  # every emoji is already there
    removes = {(p.message_id, p.emoji) for p in drawn if p.kind == "reaction_remove"}
    assert removes and removes <= set(seen.reactions)


class FakeClient:
    """The two ChatClient calls a change slot makes, answering with a given change_id."""

    def __init__(self, change_id: str) -> None:
        self.change_id = change_id
        self.calls: list[tuple[str, str, Any]] = []

    async def edit(self, message_id: str, content: str) -> dict[str, Any]:
        self.calls.append(("edit", message_id, content))
        return {"change_id": self.change_id, "kind": "edit"}

    async def react(self, message_id: str, emoji: str, *, remove: bool = False) -> dict[str, Any]:
        self.calls.append(("react", message_id, (emoji, remove)))
        return {"change_id": self.change_id, "kind": "reaction_remove" if remove else "reaction_add"}


def entry(kind: str, message_id: str, sender: str) -> dict[str, Any]:
    return {"kind": kind, "message_id": message_id, "sender_id": sender, "content": "x"}


async def test_change_deliveries_count_for_their_send_even_before_the_answer() -> None:
    pool = ClientPool("http://unused", "secret")
    client = FakeClient("c1")
    pool.clients = {"u0": client, "u1": FakeClient("-")}  # type: ignore[dict-item]
    delivered: list[int] = []
    pool.on_delivery = delivered.append
    mix = ChangeMix(pool, 1.0, seed=2)
    assert mix.observe("u0", 0, entry("message", "m1", "u0"), 100) is False  # a target now, left to the pool
    assert mix.observe("u1", 1, entry("reaction_add", "c1", "u0"), 150) is True  # before the answer: held
    assert not pool.recorder.keys
    stats = SendStats()
    assert await mix.send(client, "group", "g", 42, stats, timeout_s=5)  # type: ignore[arg-type]
    assert client.calls and client.calls[0][1] == "m1"
    assert list(stats.acked_keys) == [42]
    assert mix.observe("u2", 2, entry("reaction_add", "c1", "u0"), 10**12)  # after the answer: counted now
    assert mix.observe("u0", 0, entry("edit", "c1", "u0"), 10**12) is True  # the actor's own copy
    assert list(pool.recorder.keys) == [42, 42] and list(pool.recorder.users) == [1, 2]
    assert delivered == [42, 42] and pool.recorder.own_copies == 1
    summary = mix.phase_summary((0, 2**62))
    assert summary["delivered_before_answer"] == 1 and summary["latency"]["n"] == 2
    assert summary["answer_latency"]["n"] == 1
    assert "send" not in summary["slots"] and summary["unmatched_deliveries"] == 0


def step(rate: float, delivered_per_s: float) -> dict[str, Any]:
    return {
        "rate": rate,
        "delivered_per_s": delivered_per_s,
        "recipients_per_message": 49,
        "latency": {"n": 10, "p50_ms": 12.0, "p99_ms": 40.0},
        "lost": 0,
        "expected": 1000,
        "events": {"send_errors": {}},
    }


def test_w2_with_changes_sits_next_to_plain_w2_in_the_table() -> None:
    run = {
        "w2_saturation": {"phase": step(0, 20_000.4)},
        "w2_latency": {"steps": [step(4, 196)]},
        "w2changes_saturation": {"phase": step(0, 18_000.0), "change_share": 0.1},
        "w2changes_latency": {"steps": [step(4, 196)], "change_share": 0.1},
    }
    assert list(issue_figures(run)) == [
        "W2 saturation, deliveries/s",
        "W2 at 4 msg/s (196 del/s), p50 / p99 ms",
        "W2 + 10% changes saturation, deliveries/s",
        "W2 + 10% changes at 4 msg/s (196 del/s), p50 / p99 ms",
        "lost (expected - delivered)",
    ]
    assert issue_figures(run)["W2 + 10% changes saturation, deliveries/s"] == "18,000"
    assert [label for label, _ in phases(run)] == [
        "W2 saturation",
        "W2 + 10% changes saturation",
        "W2 at 4 msg/s",
        "W2 + 10% changes at 4 msg/s",
    ]
