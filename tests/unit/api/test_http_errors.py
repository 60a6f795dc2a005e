"""HTTP errors in the protocol's shape: routing, parsing and validation errors translated."""

from __future__ import annotations

import httpx
import pytest

from chat_events.api.app import create_app
from chat_events.api.http_errors import field_name, http_exception_error, validation_error
from chat_events.api.http_routes import ID_REGEX
from chat_events.api.protocol import Code
from chat_events.settings import Settings


def test_routing_errors() -> None:
    assert http_exception_error(404, "Not Found", "GET", "/nope") == (404, Code.NOT_FOUND, "no route /nope")
    assert http_exception_error(405, "Method Not Allowed", "GET", "/v1/groups", "POST") == (
        405,
        Code.NOT_FOUND,
        "GET is not allowed on /v1/groups (allowed: POST)",
    )
    assert http_exception_error(400, "There was an error parsing the body", "POST", "/x")[1] == Code.BAD_FRAME
    assert http_exception_error(418, "teapot", "GET", "/x") == (418, Code.INVALID_FIELD, "teapot")
    assert http_exception_error(502, "bad gateway", "GET", "/x")[1] == Code.INTERNAL


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"type": "json_invalid", "loc": ("body", 1), "msg": "JSON decode error", "ctx": {"error": "Expecting value"}},
         (400, Code.BAD_FRAME, "the body is not valid JSON: Expecting value")),
        ({"type": "missing", "loc": ("body",), "msg": "Field required"},
         (400, Code.BAD_FRAME, "the body must be a JSON object (Content-Type: application/json)")),
        ({"type": "model_attributes_type", "loc": ("body",), "msg": "Input should be a valid dictionary"},
         (400, Code.BAD_FRAME, "the body must be a JSON object (Content-Type: application/json)")),
        ({"type": "missing", "loc": ("body", "user_id"), "msg": "Field required"},
         (422, Code.INVALID_FIELD, "user_id: is required")),
        ({"type": "string_pattern_mismatch", "loc": ("body", "member_ids", 2), "msg": "String should match",
          "ctx": {"pattern": ID_REGEX}},
         (422, Code.INVALID_FIELD, "member_ids[2]: must be 1-128 characters of letters, digits, '.', '_', '@', '-' "
          "(starting with a letter or digit)")),
        ({"type": "greater_than_equal", "loc": ("query", "limit"), "msg": "x", "ctx": {"ge": 1}},
         (422, Code.INVALID_FIELD, "limit: must be at least 1")),
        ({"type": "less_than_equal", "loc": ("query", "limit"), "msg": "x", "ctx": {"le": 200}},
         (422, Code.INVALID_FIELD, "limit: must be at most 200")),
        ({"type": "int_parsing", "loc": ("body", "ttl_s"), "msg": "x", "input": "ten"},
         (422, Code.INVALID_FIELD, "ttl_s: must be an integer, got a string")),
        ({"type": "string_too_long", "loc": ("body", "name"), "msg": "x", "ctx": {"max_length": 200}},
         (422, Code.INVALID_FIELD, "name: longer than 200 characters")),
        ({"type": "string_too_short", "loc": ("body", "name"), "msg": "x", "ctx": {"min_length": 1}},
         (422, Code.INVALID_FIELD, "name: must not be empty")),
        ({"type": "something_new", "loc": ("body", "a", "b"), "msg": "Value is odd"},
         (422, Code.INVALID_FIELD, "a.b: value is odd")),
    ],
)  # fmt: skip
def test_validation_errors_name_the_field_and_the_problem(
    error: dict[str, object], expected: tuple[int, Code, str]
) -> None:
    assert validation_error([error]) == expected


def test_more_problems_are_counted() -> None:
    errors = [{"type": "missing", "loc": ("body", "a")}, {"type": "missing", "loc": ("body", "b")}]
    assert validation_error(errors)[2] == "a: is required (and 1 more problems)"
    assert field_name(()) == "request" and field_name(("path", "group_id")) == "group_id"


async def test_an_unexpected_error_is_internal_in_the_same_shape() -> None:
    app = create_app(Settings())

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as http:
        answer = await http.get("/boom")
    assert (answer.status_code, answer.json()) == (500, {"code": 16, "message": "internal error"})
