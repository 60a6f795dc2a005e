"""The persist stage's pure decision: which records announce their message (``messageStored``
and the fan-out), given each record's envelope id and the message's origin."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chat_events.streams.persist import announced


def test_the_record_that_stores_a_message_announces_it() -> None:
    assert announced([("env-a", "m1")], {"m1": "env-a"}) == [True]


def test_a_replay_of_the_storing_record_announces_it_again() -> None:
    # the message was stored by env-a in an earlier attempt: the same record handled again
    assert announced([("env-a", "m1"), ("env-b", "m2")], {"m1": "env-a", "m2": "env-b"}) == [True, True]


def test_a_duplicate_input_announces_nothing() -> None:
    assert announced([("env-b", "m1")], {"m1": "env-a"}) == [False]


def test_a_message_without_an_origin_is_announced_as_before() -> None:
    assert announced([("env-b", "m1")], {}) == [True]


def test_within_a_batch_only_the_first_record_of_a_message_announces_it() -> None:
    origins = {"m1": "env-a"}
    assert announced([("env-a", "m1"), ("env-b", "m1"), ("env-c", "m1")], origins) == [True, False, False]
    assert announced([("env-a", "m1"), ("env-a", "m1")], origins) == [True, False]  # one record in the log twice
    assert announced([("env-x", "m0"), ("env-y", "m0")], {}) == [True, False]  # no origin: still once a batch


def test_the_storing_record_announces_even_behind_a_duplicate() -> None:
    # a duplicate that comes first (another partition's copy, say) does not take the announcement
    assert announced([("env-b", "m1"), ("env-a", "m1")], {"m1": "env-a"}) == [False, True]


def test_messages_are_decided_independently() -> None:
    records = [("env-a", "m1"), ("env-b", "m2"), ("env-c", "m1"), ("env-b", "m2")]
    assert announced(records, {"m1": "env-a", "m2": "env-x"}) == [True, False, False, False]


@given(
    st.lists(st.tuples(st.sampled_from(["e1", "e2", "e3"]), st.sampled_from(["m1", "m2"])), max_size=12),
    st.dictionaries(st.sampled_from(["m1", "m2"]), st.sampled_from(["e1", "e2", "e3"])),
)
def test_at_most_one_announcement_per_message_and_only_by_its_origin(
    records: list[tuple[str, str]], origins: dict[str, str]
) -> None:
    emits = announced(records, origins)
    assert len(emits) == len(records)
    for message in ("m1", "m2"):
        by = [envelope for (envelope, mid), emit in zip(records, emits, strict=True) if emit and mid == message]
        assert len(by) <= 1
        if message in origins:
            assert by == ([origins[message]] if (origins[message], message) in records else [])
        else:
            assert len(by) == (1 if any(mid == message for _, mid in records) else 0)
