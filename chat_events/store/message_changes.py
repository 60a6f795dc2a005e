"""Pure decisions of the stores about changes to messages (issue 16): which reaction writes
take effect and how stored reactions read back. Both adapters use them, so they agree. No IO.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from chat_events.store.models import Reaction

ReactionKey = tuple[str, str, str]
"""``(message_id, user_id, emoji)``: one reaction row."""


def reaction_key(r: Reaction) -> ReactionKey:
    return (r.message_id, r.user_id, r.emoji)


def reactions_to_write(stored_at: Mapping[ReactionKey, int], incoming: Sequence[Reaction]) -> list[Reaction]:
    """The reactions of ``incoming`` that change their row, in order: last writer by ``at_ms``
    wins, a stored row with a newer ``at_ms`` is left as it is, an equal ``at_ms`` is written
    again (as the embedded upsert's ``>=``: a replay writes the same values). Several of one
    key in one call are applied one after the other and only the last effective one is
    returned: one write per row (statements of one Cassandra batch share a timestamp, and a tie
    is broken by value, not by order)."""
    current = dict(stored_at)
    out: dict[ReactionKey, Reaction] = {}
    for r in incoming:
        key = reaction_key(r)
        have = current.get(key)
        if have is not None and have > r.at_ms:
            continue
        current[key] = r.at_ms
        out.pop(key, None)
        out[key] = r
    return list(out.values())


def active_reactions(rows: Iterable[Reaction]) -> dict[str, dict[str, tuple[str, ...]]]:
    """Stored reaction rows as the port answers them: per message, per emoji, the users with an
    active reaction in the order they reacted (``at_ms``, then user id); emojis in the order of
    their first reaction; messages and emojis without any active reaction absent."""
    live = sorted((r for r in rows if r.active), key=lambda r: (r.at_ms, r.user_id, r.emoji))
    out: dict[str, dict[str, list[str]]] = {}
    for r in live:
        out.setdefault(r.message_id, {}).setdefault(r.emoji, []).append(r.user_id)
    return {mid: {emoji: tuple(users) for emoji, users in by_emoji.items()} for mid, by_emoji in out.items()}
