"""Every HTTP error in the protocol's one shape: ``{"code": <Code>, "message": str}``.

FastAPI and Starlette answer their own errors as ``{"detail": ...}`` (no such route, a wrong
method, an unparsable body) and pydantic's validation errors as lists of dicts; the handlers
installed here turn each into a :class:`Code` with a fitting HTTP status and a message that
names the field and says what is wrong. The translations are pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from chat_events.api.http_routes import ID_REGEX
from chat_events.api.protocol import ID_RULE, Code

STATUS_CODES: dict[int, Code] = {
    400: Code.BAD_FRAME,
    401: Code.UNAUTHORIZED,
    403: Code.FORBIDDEN,
    404: Code.NOT_FOUND,
    405: Code.NOT_FOUND,
    409: Code.INVALID_FIELD,
    413: Code.PAYLOAD_TOO_LARGE,
    422: Code.INVALID_FIELD,
    429: Code.RATE_LIMITED,
    503: Code.UNAVAILABLE,
}

_WHERE = ("body", "query", "path", "header", "cookie")
_BODY_NOT_AN_OBJECT = ("model_attributes_type", "dict_type", "model_type")


def error_body(code: Code, message: str) -> dict[str, Any]:
    return {"code": int(code), "message": message}


def http_exception_error(
    status: int, detail: Any, method: str, path: str, allow: str | None = None
) -> tuple[int, Code, str]:
    """(status, code, message) for a Starlette ``HTTPException`` (raised by routing and body
    parsing; the routes themselves raise ``ApiError``). ``allow``: the 405's ``Allow`` header."""
    if status == 404:
        return status, Code.NOT_FOUND, f"no route {path}"
    if status == 405:
        allowed = f" (allowed: {allow})" if allow else ""
        return status, Code.NOT_FOUND, f"{method} is not allowed on {path}{allowed}"
    if status == 400 and detail == "There was an error parsing the body":
        return status, Code.BAD_FRAME, "the body could not be parsed as JSON (too deep, or malformed)"
    default = Code.INTERNAL if status >= 500 else Code.INVALID_FIELD
    return status, STATUS_CODES.get(status, default), str(detail)


def validation_error(errors: Sequence[Mapping[str, Any]]) -> tuple[int, Code, str]:
    """(status, code, message) for a ``RequestValidationError``: the first problem, as
    ``"<field>: <what is wrong>"``; a body that is not a JSON object is code 3 (400)."""
    if not errors:
        return 422, Code.INVALID_FIELD, "invalid request"
    first = errors[0]
    kind = str(first.get("type", ""))
    loc = tuple(first.get("loc", ()))
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    if kind == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "malformed")
        return 400, Code.BAD_FRAME, f"the body is not valid JSON: {reason}"
    if loc == ("body",) and kind in (*_BODY_NOT_AN_OBJECT, "missing"):
        return 400, Code.BAD_FRAME, "the body must be a JSON object (Content-Type: application/json)"
    return 422, Code.INVALID_FIELD, f"{field_name(loc)}: {reason_of(first)}{more}"


def field_name(loc: Sequence[Any]) -> str:
    """``("body", "member_ids", 1)`` -> ``member_ids[1]``; ``("query", "limit")`` -> ``limit``."""
    parts = list(loc[1:] if loc and loc[0] in _WHERE else loc)
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else f".{part}" if name else str(part)
    return name or (str(loc[0]) if loc else "request")


def reason_of(error: Mapping[str, Any]) -> str:
    """What is wrong, in the words the WebSocket protocol uses for the same problem."""
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return "is required"
    if kind == "string_pattern_mismatch":
        return ID_RULE if ctx.get("pattern") == ID_REGEX else f"must match {ctx.get('pattern')}"
    if kind == "string_too_long":
        return f"longer than {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else f"shorter than {ctx.get('min_length')} characters"
    if kind == "too_long":
        return f"more than {ctx.get('max_length')} items"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {"greater_than_equal": "at least", "greater_than": "more than", "less_than_equal": "at most"}
        bound = next(iter(ctx.values()), "?")
        return f"must be {words.get(kind, 'less than')} {bound}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"must be an integer, got {_json_type(value)}"
    if kind == "string_type":
        return f"must be a string, got {_json_type(value)}"
    if kind == "list_type":
        return f"must be an array, got {_json_type(value)}"
    message = str(error.get("msg", "is invalid"))
    return message[:1].lower() + message[1:]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    return {dict: "an object", list: "an array", bool: "a boolean", int: "an integer", float: "a number"}.get(
        type(value), type(value).__name__
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answer routing, parsing, validation and unexpected errors in the protocol's shape."""

    async def http_exception(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        allow = (exc.headers or {}).get("Allow")
        status, code, message = http_exception_error(
            exc.status_code, exc.detail, request.method, request.url.path, allow
        )
        return JSONResponse(error_body(code, message), status_code=status, headers=exc.headers)

    async def invalid_request(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        status, code, message = validation_error(exc.errors())
        return JSONResponse(error_body(code, message), status_code=status)

    async def internal(_: Request, exc: Exception) -> JSONResponse:  # the server logs the exception
        return JSONResponse(error_body(Code.INTERNAL, "internal error"), status_code=500)

    app.add_exception_handler(StarletteHTTPException, http_exception)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(Exception, internal)
