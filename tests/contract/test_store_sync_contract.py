"""What every store adapter must do for seq ranges of a conversation and device sync progress
(issue 15, items 7 and 8; see the last section of ``chat_events/store/port.py``)."""

from __future__ import annotations

from chat_events.store.port import MessageStore
from chat_events.store.progress import DeviceProgress
from tests.contract.test_store_contract import CONV, message


def _ack(user: str, device: str, seq: int, at_ms: int = 1_700_000_000_000) -> DeviceProgress:
    return DeviceProgress(user_id=user, device_id=device, acked_seq=seq, acked_at_ms=at_ms)


async def test_a_range_holds_both_ends_and_pages_with_has_more(store: MessageStore) -> None:
    await store.save_messages([message(seq) for seq in range(1, 2102)])  # crosses Cassandra's bucket bounds
    page = await store.conversation_range(CONV, 995, 1010, limit=10)
    assert [m.seq for m in page.items] == list(range(995, 1005)) and page.has_more
    rest = await store.conversation_range(CONV, 1005, 1010, limit=10)
    assert [m.seq for m in rest.items] == list(range(1005, 1011)) and not rest.has_more
    exact = await store.conversation_range(CONV, 1991, 2000, limit=10)  # the range ends with the page
    assert [m.seq for m in exact.items] == list(range(1991, 2001)) and not exact.has_more
    one = await store.conversation_range(CONV, 7, 7, limit=1)
    assert [m.seq for m in one.items] == [7] and not one.has_more
    assert (await store.conversation_range(CONV, 7, 7, limit=1)).items[0] == (
        await store.conversation_messages(CONV, after_seq=6, limit=1)
    ).items[0]


async def test_a_range_past_the_last_message_or_of_an_unknown_conversation(store: MessageStore) -> None:
    await store.save_messages([message(seq) for seq in range(1, 6)])
    tail = await store.conversation_range(CONV, 4, 10**12, limit=50)
    assert [m.seq for m in tail.items] == [4, 5] and not tail.has_more
    beyond = await store.conversation_range(CONV, 6, 10, limit=50)
    assert beyond.items == () and not beyond.has_more
    from_zero = await store.conversation_range(CONV, 0, 2, limit=50)
    assert [m.seq for m in from_zero.items] == [1, 2] and not from_zero.has_more
    assert (await store.conversation_range("dm:x:y", 1, 100)).items == ()
    other = message(1, conv="dm:carol:dave")
    await store.save_messages([other])
    assert (await store.conversation_range("dm:carol:dave", 1, 100)).items == (other,)


async def test_device_progress_never_goes_backwards_and_replays_change_nothing(store: MessageStore) -> None:
    assert await store.device_progress([("alice", "phone")]) == {}
    await store.advance_device_progress([_ack("alice", "phone", 5, at_ms=10)])
    assert await store.device_progress([("alice", "phone")]) == {("alice", "phone"): _ack("alice", "phone", 5, 10)}
    await store.advance_device_progress([_ack("alice", "phone", 3, at_ms=20)])  # older ack, later
    await store.advance_device_progress([_ack("alice", "phone", 5, at_ms=30)])  # a replay
    assert await store.device_progress([("alice", "phone")]) == {("alice", "phone"): _ack("alice", "phone", 5, 10)}
    await store.advance_device_progress([_ack("alice", "phone", 9, at_ms=40), _ack("alice", "phone", 7, at_ms=50)])
    assert (await store.device_progress([("alice", "phone")]))[("alice", "phone")].acked_seq == 9
    await store.advance_device_progress([])


async def test_device_progress_is_per_device_and_per_user(store: MessageStore) -> None:
    await store.advance_device_progress(
        [_ack("alice", "phone", 4), _ack("alice", "laptop", 2), _ack("bob", "phone", 8)]
    )
    await store.advance_device_progress([_ack("alice", "laptop", 6)])
    found = await store.device_progress(
        [("alice", "phone"), ("alice", "laptop"), ("bob", "phone"), ("bob", "laptop"), ("carol", "phone")]
    )
    assert {key: p.acked_seq for key, p in found.items()} == {
        ("alice", "phone"): 4,
        ("alice", "laptop"): 6,
        ("bob", "phone"): 8,
    }
    assert await store.device_progress([]) == {}
