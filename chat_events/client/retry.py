"""When to retry a ``send``: a pure decision on the failure and the attempt count.

A retry always carries the same ``client_msg_id``, so retrying after an unknown outcome (a lost
connection, no answer in time) is safe: the edge derives the same message id and never makes a
second message.
"""

from __future__ import annotations

from chat_events.api.protocol import Code
from chat_events.client.errors import ChatError, ConnectionLost

MAX_BACKOFF_S = 2.0


def backoff(attempt: int) -> float:
    """Exponential backoff for retry number ``attempt`` (1, 2, ...): 0.1, 0.2, 0.4 ... up to 2 s."""
    return float(min(MAX_BACKOFF_S, 0.05 * 2**attempt))


def send_retry_delay(
    failure: BaseException, retries_done: int, *, retries: int, wait_on_rate_limit: bool = False
) -> float | None:
    """Seconds to wait before retrying a send that failed with ``failure``, or None to give up.

    Retried: UNAVAILABLE (nothing was accepted), a lost connection and a reply timeout (the
    outcome is unknown), and RATE_LIMITED only when the caller asked to wait (``retry_after_ms``).
    Everything else is the caller's to fix.
    """
    if retries_done >= retries:
        return None
    attempt = retries_done + 1
    if isinstance(failure, ChatError):
        if failure.code == Code.UNAVAILABLE or (failure.code == Code.RATE_LIMITED and wait_on_rate_limit):
            after = failure.retry_after_ms
            return after / 1000 if after is not None else backoff(attempt)
        return None
    if isinstance(failure, ConnectionLost | TimeoutError):
        return backoff(attempt)
    return None
