"""The persist stage applying changes to sent messages against the real embedded store: in
order with the sends of the same batch, deduped like sends, refused when they raced another
change, and re-applied (not refused) after a crash between rewriting the message and storing
the change's entry."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from chat_events.events.factory import new_envelope
from chat_events.events.message_events import MessageEdited, MessageReacted, MessageRecalled
from chat_events.events.types import ChatMessage, Event, MessageStored, PersonalChatSent
from chat_events.store.embedded import EmbeddedStore
from chat_events.streams.persist import PersistStage
from chat_events.streams.records import Incoming, SourceRecord

CONVERSATION = "dm:alice:bob"
MESSAGE_ID = "00000000-0000-4000-8000-000000000001"


def _record(event: Event, offset: int) -> Incoming:
    envelope = new_envelope(event, user_id="alice")
    return Incoming(SourceRecord("chat.personal-chat", 0, offset, CONVERSATION.encode(), b""), envelope)


def _send(offset: int = 0) -> Incoming:
    event = PersonalChatSent(
        message_id=MESSAGE_ID,
        sender_id="alice",
        target_id="bob",
        payload="hi",
        target_type="user",
        conversation_id=CONVERSATION,
        client_msg_id="c0",
    )
    return _record(event, offset)


def _edit(n: int, offset: int, actor: str = "alice") -> Incoming:
    change_id = f"00000000-0000-4000-8000-0000000000e{n}"
    event = MessageEdited(
        change_id=change_id,
        actor_id=actor,
        conversation_id=CONVERSATION,
        message_id=MESSAGE_ID,
        payload=f"hi v{n}",
        client_msg_id=f"e{n}",
    )
    return _record(event, offset)


def _stored(result_outputs: Sequence[object]) -> list[ChatMessage]:
    out = []
    for output in result_outputs:
        payload = output.envelope.payload  # type: ignore[attr-defined]
        if isinstance(payload, MessageStored):
            out.append(payload.message)
    return out


def _stage(store: EmbeddedStore) -> PersistStage:
    return PersistStage(store, stored_topic="chat.message-stored", max_payload_bytes=32768)


async def test_a_send_and_its_edits_in_one_batch_are_entries_in_order(tmp_path: Path) -> None:
    async with EmbeddedStore(tmp_path / "s.sqlite3") as store:
        result = await _stage(store).handle([_send(0), _edit(1, 1), _edit(2, 2)])
        announced = _stored(result.outputs)
        assert [(m.seq, m.kind, m.payload) for m in announced] == [
            (1, "message", "hi"),
            (2, "edit", "hi v1"),
            (3, "edit", "hi v2"),
        ]
        message = await store.get_message(MESSAGE_ID)
        assert message is not None
        assert (message.payload, message.status, message.changed_seq) == ("hi v2", "edited", 3)
        entry = await store.get_message(announced[1].message_id)
        assert (
            entry is not None and entry.payload == "" and entry.relates_to == MESSAGE_ID
        )  # the text lives in the message


async def test_a_replayed_change_is_announced_again_and_stored_once(tmp_path: Path) -> None:
    async with EmbeddedStore(tmp_path / "s.sqlite3") as store:
        await _stage(store).handle([_send(0)])
        edit = _edit(1, 1)
        first = _stored((await _stage(store).handle([edit])).outputs)
        again = _stored((await _stage(store).handle([edit])).outputs)  # a new worker replays the record
        assert [m.seq for m in first] == [m.seq for m in again] == [2]
        assert again[0].payload == "hi v1"  # still the latest edit: pushed with its text
        duplicate = _stored((await _stage(store).handle([_edit(1, 2)])).outputs)  # the same change sent again
        assert duplicate == []  # another record's change: stored once, announced by its own record
        assert (await store.max_conversation_seqs([CONVERSATION]))[CONVERSATION] == 2


async def test_a_crash_between_rewriting_the_message_and_storing_the_entry_re_applies_it(tmp_path: Path) -> None:
    async with EmbeddedStore(tmp_path / "s.sqlite3") as store:
        await _stage(store).handle([_send(0)])
        recall = _record(
            MessageRecalled(
                change_id="00000000-0000-4000-8000-0000000000f1",
                actor_id="alice",
                conversation_id=CONVERSATION,
                message_id=MESSAGE_ID,
                client_msg_id="r1",
            ),
            1,
        )

        class Crashing(EmbeddedStore):
            async def save_messages(self, *args: object, **kwargs: object) -> None:
                raise RuntimeError("killed")

        crashing = Crashing(tmp_path / "s.sqlite3")
        async with crashing:
            with contextlib.suppress(RuntimeError):
                await _stage(crashing).handle([recall])
        message = await store.get_message(MESSAGE_ID)
        assert message is not None and message.status == "recalled" and message.changed_seq == 2  # rewritten, no entry
        result = await _stage(store).handle([recall])  # the replay: re-applied, not refused as "already recalled"
        assert not result.rejects
        assert [(m.seq, m.kind) for m in _stored(result.outputs)] == [(2, "recall")]


async def test_a_change_that_raced_another_is_dead_lettered_and_stores_nothing(tmp_path: Path) -> None:
    async with EmbeddedStore(tmp_path / "s.sqlite3") as store:
        recall = _record(
            MessageRecalled(
                change_id="00000000-0000-4000-8000-0000000000f1",
                actor_id="alice",
                conversation_id=CONVERSATION,
                message_id=MESSAGE_ID,
                client_msg_id="r1",
            ),
            1,
        )
        result = await _stage(store).handle([_send(0), _edit(2, 3, actor="bob"), recall, _edit(1, 2)])
        assert [m.kind for m in _stored(result.outputs)] == ["message", "recall"]
        assert sorted(r.error_code for r in result.rejects) == ["change_forbidden", "change_invalid"]
        assert (await store.max_conversation_seqs([CONVERSATION]))[CONVERSATION] == 2  # no gap, no entry


async def test_reactions_are_counted_per_user_and_emoji(tmp_path: Path) -> None:
    def react(n: int, actor: str, added: bool) -> Incoming:
        return _record(
            MessageReacted(
                change_id=f"00000000-0000-4000-8000-00000000aa0{n}",
                actor_id=actor,
                conversation_id=CONVERSATION,
                message_id=MESSAGE_ID,
                emoji="\U0001f44d",
                added=added,
                client_msg_id=f"x{n}",
            ),
            n,
        )

    async with EmbeddedStore(tmp_path / "s.sqlite3") as store:
        await _stage(store).handle([_send(0), react(1, "bob", True), react(2, "alice", True), react(3, "bob", False)])
        assert await store.reactions_of([MESSAGE_ID]) == {MESSAGE_ID: {"\U0001f44d": ("alice",)}}
