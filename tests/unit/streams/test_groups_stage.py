"""The groups stage over the embedded store: administration applied once and checked again
against the stored group, a system message per change (deterministic ids, so a replay is the
same message), replays announced again but not re-applied or refused."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chat_events.events.factory import new_envelope
from chat_events.events.group_events import GroupDissolved, GroupMemberMuted, GroupMemberRoleSet, GroupUpdated
from chat_events.events.types import Event, GroupCreated, GroupMemberJoined, GroupMemberLeft, PersonalChatSent
from chat_events.store.embedded import EmbeddedStore
from chat_events.streams.groups import GroupsStage
from chat_events.streams.records import Incoming, SourceRecord

TOPIC = "chat.personal-chat"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[EmbeddedStore]:
    async with EmbeddedStore(tmp_path / "s.sqlite3") as adapter:
        yield adapter


_clock = iter(range(1, 10_000))


def _item(event: Event) -> Incoming:
    second = next(_clock)
    stamp = f"2026-01-01T00:{second // 60:02d}:{second % 60:02d}.000Z"
    envelope = new_envelope(event, timestamp=stamp)
    return Incoming(SourceRecord("chat.group-events", 0, second, b"g", b""), envelope)


def _system(outputs: list) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for output in outputs:
        message = output.envelope.payload
        assert isinstance(message, PersonalChatSent) and message.kind == "system"
        assert output.topic == TOPIC and output.key == b"g" and message.conversation_id == "g"
        out.append(json.loads(message.payload))
    return out


CREATED = GroupCreated(group_id="g", name="Team", owner_id="owen", member_ids=("ann", "bob"), description="d")


async def test_each_change_is_applied_and_announced(store: EmbeddedStore) -> None:
    stage = GroupsStage(store, chat_topic=TOPIC)
    events: list[Event] = [
        CREATED,
        GroupMemberRoleSet(group_id="g", member_id="ann", role="admin", set_by="owen"),
        GroupUpdated(group_id="g", updated_by="ann", name="Team 2", avatar_url="https://x/a.png"),
        GroupMemberMuted(group_id="g", member_id="bob", muted=True, set_by="ann", until_ms=0),
        GroupMemberJoined(group_id="g", member_id="cat", added_by="bob"),
        GroupMemberLeft(group_id="g", member_id="cat", removed_by="ann"),
        GroupMemberRoleSet(group_id="g", member_id="bob", role="owner", set_by="owen"),
        GroupDissolved(group_id="g", dissolved_by="bob"),
    ]
    result = await stage.handle([_item(e) for e in events])
    assert result.rejects == []
    bodies = _system(result.outputs)
    assert [b["event"] for b in bodies] == [e.EVENT_NAME for e in events]
    members = ["ann", "bob", "owen"]
    assert bodies[0] == {
        "event": "groupCreated",
        "actor": "owen",
        "name": "Team",
        "members": members,
        "member_count": 3,
    }
    assert bodies[2] == {"event": "groupUpdated", "actor": "ann", "name": "Team 2", "avatar_url": "https://x/a.png"}
    assert bodies[3] == {"event": "groupMemberMuted", "actor": "ann", "member": "bob", "muted": True, "until_ms": 0}
    assert bodies[5] == {"event": "groupMemberLeft", "actor": "ann", "member": "cat"}
    assert bodies[6] == {
        "event": "groupMemberRoleSet",
        "actor": "owen",
        "member": "bob",
        "role": "owner",
        "previous_owner": "owen",
    }
    removal = result.outputs[5].envelope.payload
    assert isinstance(removal, PersonalChatSent) and removal.target_members == ("cat",)  # "you were removed"
    profile = (await store.group_profiles(["g"]))["g"]
    assert (profile.name, profile.avatar_url, profile.description, profile.owner_id, profile.dissolved) == (
        "Team 2",
        "https://x/a.png",
        "d",
        "bob",
        True,
    )
    roles = await store.group_roles([("g", "owen"), ("g", "bob"), ("g", "cat")])
    assert roles["g", "owen"].role == "admin"  # the previous owner
    assert not roles["g", "bob"].muted  # the new owner carries no mute
    assert (await store.group_members(["g"]))["g"] == {"owen", "ann", "bob"}
    assert (await store.my_groups("ann")).items == ()  # dissolved


async def test_a_change_the_stored_group_does_not_allow_is_dead_lettered(store: EmbeddedStore) -> None:
    stage = GroupsStage(store, chat_topic=TOPIC)
    await stage.handle([_item(CREATED)])
    result = await stage.handle(
        [
            _item(GroupUpdated(group_id="g", updated_by="bob", name="mine")),  # a plain member
            _item(GroupMemberMuted(group_id="g", member_id="ann", muted=True, set_by="zed")),  # an outsider
            _item(GroupDissolved(group_id="nope", dissolved_by="owen")),  # no such group
            _item(GroupMemberRoleSet(group_id="g", member_id="ann", role="owner", set_by="ann")),
        ]
    )
    assert result.outputs == []
    assert [r.error_code for r in result.rejects] == ["not_permitted"] * 4
    assert "only the owner and admins" in result.rejects[0].reason
    assert (await store.group_profiles(["g"]))["g"].name == "Team"


async def test_a_replay_is_the_same_message_and_changes_nothing(store: EmbeddedStore) -> None:
    stage = GroupsStage(store, chat_topic=TOPIC)
    created, leave = _item(CREATED), _item(GroupMemberLeft(group_id="g", member_id="bob"))
    rename = _item(GroupUpdated(group_id="g", updated_by="owen", name="New"))
    first = await stage.handle([created, leave, rename])
    later = await stage.handle([_item(GroupUpdated(group_id="g", updated_by="owen", name="Newer"))])
    again = await stage.handle([created, leave, rename])  # after a crash: bob already left, the name moved on
    assert again.rejects == []  # a replayed leave of someone gone is not refused
    assert [o.envelope.id for o in again.outputs] == [o.envelope.id for o in first.outputs]
    ids = [o.envelope.payload.message_id for o in again.outputs]  # type: ignore[union-attr]
    assert ids == [o.envelope.payload.message_id for o in first.outputs]  # type: ignore[union-attr]
    assert (await store.group_profiles(["g"]))["g"].name == "Newer"  # the older rename not re-applied
    assert len(later.outputs) == 1


async def test_bad_events_are_dead_lettered(store: EmbeddedStore) -> None:
    stage = GroupsStage(store, chat_topic=TOPIC)
    await stage.handle([_item(CREATED)])
    result = await stage.handle([_item(GroupUpdated(group_id="g", updated_by="owen"))])  # changes nothing
    assert result.outputs == [] and len(result.rejects) == 1
