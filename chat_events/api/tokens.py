"""Access tokens: HS256 JWTs signed with ``CHAT_AUTH_SECRET``, always expiring.

The edge trusts only what it verified here: the user id is the token's ``sub``, never a field
of a frame. Issuing is for development (``POST /v1/dev/token``) and tests; in production an
identity service that shares the secret issues them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from chat_events.events.validation import ID_PATTERN

ALGORITHM = "HS256"
ISSUER = "chat-events"


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: str
    expires_at_ms: int


class TokenError(Exception):
    """``expired`` tokens get login result 2 (sign in again); every other failure is 1."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


def issue_token(user_id: str, secret: str, *, ttl_s: int, now_s: float | None = None) -> tuple[str, int]:
    """A signed token for ``user_id`` valid for ``ttl_s`` seconds; returns (token, expiry in ms)."""
    if not ID_PATTERN.fullmatch(user_id):
        raise ValueError("user_id must be 1-128 characters of letters, digits, '.', '_', '@', '-'")
    now = time.time() if now_s is None else now_s
    expires = int(now) + ttl_s
    token = jwt.encode({"sub": user_id, "iat": int(now), "exp": expires, "iss": ISSUER}, secret, algorithm=ALGORITHM)
    return token, expires * 1000


def verify_token(token: str, secret: str, *, now_s: float | None = None) -> Claims:
    """The verified claims of ``token``, or :class:`TokenError` (no details of the token leak)."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["sub", "exp"], "verify_exp": now_s is None},
        )
        if now_s is not None and claims["exp"] <= now_s:  # tests pin the clock
            raise jwt.ExpiredSignatureError
    except jwt.ExpiredSignatureError:
        raise TokenError("token expired", expired=True) from None
    except jwt.PyJWTError:
        raise TokenError("invalid token") from None
    user_id = claims.get("sub")
    if not isinstance(user_id, str) or not ID_PATTERN.fullmatch(user_id):
        raise TokenError("invalid token subject")
    return Claims(user_id, int(claims["exp"]) * 1000)
