"""Per-user token buckets: pure, clock passed in.

Limits are per edge node (a user spread over several edges gets the limit on each); the
connection cap makes that bounded. A refused send is answered with ``RATE_LIMITED`` and its
``retry_after_ms``, and one ``userChatRateLimited`` is published per refusal streak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(slots=True)
class TokenBucket:
    rate_per_s: float
    burst: int
    tokens: float = field(init=False)
    updated_s: float = field(default=0.0)
    limited: bool = False
    """True after a refusal until the next allowed take: one rate-limit event per streak."""

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def take(self, now_s: float, cost: float = 1.0) -> int:
        """Take ``cost`` tokens: 0 if allowed, else the milliseconds until it would be."""
        self.tokens = min(float(self.burst), self.tokens + (now_s - self.updated_s) * self.rate_per_s)
        self.updated_s = now_s
        if self.tokens >= cost:
            self.tokens -= cost
            self.limited = False
            return 0
        return max(1, math.ceil((cost - self.tokens) / self.rate_per_s * 1000))


class RateLimiter:
    """One bucket per key, created full; idle full buckets are dropped by :meth:`prune`."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, key: str, now_s: float) -> tuple[int, bool]:
        """(retry_after_ms or 0, first refusal of a streak)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate_per_s, self.burst, updated_s=now_s)
        wait_ms = bucket.take(now_s)
        if not wait_ms:
            return 0, False
        first = not bucket.limited
        bucket.limited = True
        return wait_ms, first

    def prune(self, now_s: float) -> None:
        full_after = self.burst / self.rate_per_s
        self._buckets = {k: b for k, b in self._buckets.items() if now_s - b.updated_s < full_after}
