"""Wire form of frames, from the client's side: encode an input frame, decode an output frame. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from chat_events.api.protocol import Code
from chat_events.client.errors import ChatError, GapNotRecoverable

RequestId = int | str


@dataclass(frozen=True, slots=True)
class OutputFrame:
    """One server -> client frame. ``request_id`` is None for server pushes."""

    type: str
    request_id: RequestId | None
    code: int
    message: str
    data: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.code == Code.OK

    def error(self) -> ChatError:
        """The refusal this frame carries, as the exception to raise."""
        if self.code == Code.NOT_RECOVERABLE:
            return GapNotRecoverable.from_data(self.message, self.data)
        return ChatError(self.code, self.message, self.data)


def encode_input(frame_type: str, data: dict[str, Any] | None = None, request_id: RequestId | None = None) -> str:
    frame: dict[str, Any] = {"type": frame_type, "request_id": request_id}
    if data is not None:
        frame["data"] = data
    return orjson.dumps(frame).decode()


def decode_output(raw: str | bytes) -> OutputFrame:
    """Parse one output frame; ``ValueError`` if it is not one."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"output frame is not JSON: {exc}") from None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ValueError("output frame must be an object with a string 'type'")
    request_id = value.get("request_id")
    if isinstance(request_id, bool) or not isinstance(request_id, int | str | None):
        raise ValueError("output frame has a malformed request_id")
    code = value.get("code", 0)
    if isinstance(code, bool) or not isinstance(code, int):
        raise ValueError("output frame has a non-integer code")
    data = value.get("data")
    return OutputFrame(
        type=value["type"],
        request_id=request_id,
        code=code,
        message=str(value.get("message", "")),
        data=data if isinstance(data, dict) else {},
    )
