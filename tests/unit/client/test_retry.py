"""The send retry decision."""

from __future__ import annotations

import pytest

from chat_events.api.protocol import Code
from chat_events.client.errors import ChatError, ConnectionLost
from chat_events.client.retry import backoff, send_retry_delay


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff(n) for n in (1, 2, 3)] == [0.1, 0.2, 0.4]
    assert backoff(30) == 2.0


@pytest.mark.parametrize(
    "failure",
    [ChatError(Code.UNAVAILABLE, "try again"), ConnectionLost(1006), ConnectionLost(None), TimeoutError()],
)
def test_unknown_outcomes_and_unavailable_are_retried(failure: BaseException) -> None:
    assert send_retry_delay(failure, 0, retries=3) == 0.1
    assert send_retry_delay(failure, 2, retries=3) == 0.4
    assert send_retry_delay(failure, 3, retries=3) is None


@pytest.mark.parametrize("code", [Code.FORBIDDEN, Code.INVALID_FIELD, Code.PAYLOAD_TOO_LARGE, Code.NOT_FOUND])
def test_refusals_are_not_retried(code: Code) -> None:
    assert send_retry_delay(ChatError(code, "no"), 0, retries=3) is None


def test_rate_limited_waits_only_when_asked() -> None:
    limited = ChatError(Code.RATE_LIMITED, "slow down", {"retry_after_ms": 350})
    assert send_retry_delay(limited, 0, retries=3) is None
    assert send_retry_delay(limited, 0, retries=3, wait_on_rate_limit=True) == 0.35
    assert send_retry_delay(ChatError(Code.UNAVAILABLE, "", {"retry_after_ms": 20}), 0, retries=1) == 0.02
