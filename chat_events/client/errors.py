"""What the client raises. Server refusals carry the wire ``code`` (:class:`~chat_events.api.protocol.Code`)
and ``data``; transport failures carry the WebSocket close code."""

from __future__ import annotations

from typing import Any

from chat_events.api.protocol import Code

_RETRIABLE = frozenset({Code.UNAVAILABLE, Code.RATE_LIMITED})


class ChatClientError(Exception):
    """Base of every error the client raises on purpose."""


class ChatError(ChatClientError):
    """The server (WebSocket output frame or HTTP error body) refused a request with ``code``."""

    def __init__(self, code: int, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(f"{_code_name(code)} ({code}): {message}")
        self.code = code
        self.message = message
        self.data: dict[str, Any] = dict(data or {})

    @property
    def retriable(self) -> bool:
        """True for UNAVAILABLE (retry with the same client_msg_id) and RATE_LIMITED (after a wait)."""
        return self.code in _RETRIABLE

    @property
    def retry_after_ms(self) -> int | None:
        """``data.retry_after_ms`` of a RATE_LIMITED refusal, if the server gave one."""
        value = self.data.get("retry_after_ms")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


class GapNotRecoverable(ChatError):
    """Per-user seqs ``from_seq``..``to_seq`` are gone for good; delivery continues after ``resume_seq``.

    Raised once by :meth:`ChatClient.receive` at the place of the hole, and by a raw
    :meth:`ChatClient.sync` that hits it.
    """

    def __init__(
        self, from_seq: int, to_seq: int, resume_seq: int, message: str = "messages are not recoverable"
    ) -> None:
        super().__init__(
            Code.NOT_RECOVERABLE, message, {"from_seq": from_seq, "to_seq": to_seq, "resume_seq": resume_seq}
        )
        self.from_seq = from_seq
        self.to_seq = to_seq
        self.resume_seq = resume_seq

    @classmethod
    def from_data(cls, message: str, data: dict[str, Any]) -> GapNotRecoverable:
        from_seq = _int(data.get("from_seq"), 0)
        to_seq = _int(data.get("to_seq"), from_seq)
        return cls(from_seq, to_seq, _int(data.get("resume_seq"), to_seq), message)


class ConnectionLost(ChatClientError):
    """The WebSocket closed (or could not be opened); ``close_code`` is None when there was no close frame."""

    def __init__(self, close_code: int | None, reason: str = "") -> None:
        shown = f"close code {close_code}" if close_code is not None else "no close code"
        super().__init__(f"connection lost ({shown}){': ' + reason if reason else ''}")
        self.close_code = close_code
        self.reason = reason


def _code_name(code: int) -> str:
    try:
        return Code(code).name
    except ValueError:
        return "UNKNOWN"


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
