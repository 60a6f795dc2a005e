"""URL helpers and the wire form of frames."""

from __future__ import annotations

import orjson
import pytest

from chat_events.api.protocol import Code, parse_frame
from chat_events.client.errors import ChatError, GapNotRecoverable
from chat_events.client.frames import decode_output, encode_input
from chat_events.client.models import SignInInfo, SyncPage
from chat_events.client.urls import http_url, ws_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8000", "ws://127.0.0.1:8000/ws"),
        ("http://127.0.0.1:8000/", "ws://127.0.0.1:8000/ws"),
        ("https://chat.example.com", "wss://chat.example.com/ws"),
        ("ws://127.0.0.1:8000/ws", "ws://127.0.0.1:8000/ws"),
        ("127.0.0.1:8000", "ws://127.0.0.1:8000/ws"),
        ("http://h:1/prefix", "ws://h:1/prefix/ws"),
    ],
)
def test_ws_url(given: str, expected: str) -> None:
    assert ws_url(given) == expected
    assert ws_url(http_url(expected)) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("ws://127.0.0.1:8000/ws", "http://127.0.0.1:8000"),
        ("wss://chat.example.com/ws", "https://chat.example.com"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
    ],
)
def test_http_url(given: str, expected: str) -> None:
    assert http_url(given) == expected


def test_bad_url() -> None:
    with pytest.raises(ValueError):
        ws_url("ftp://x")


def test_encoded_inputs_parse_on_the_server_side() -> None:
    send = {"target_type": "user", "target_id": "bob", "content": "hi", "client_msg_id": "n1", "mentions": ["bob"]}
    parsed = parse_frame(encode_input("send", send, 7), max_payload_bytes=1024)
    assert (parsed.type, parsed.request_id) == ("send", 7)
    assert parse_frame(encode_input("heartbeat", None, "h1"), max_payload_bytes=1024).type == "heartbeat"


def test_decode_output_and_errors() -> None:
    ok = decode_output('{"type":"send","request_id":3,"code":0,"message":"ok","data":{"message_id":"m"}}')
    assert ok.ok and ok.request_id == 3 and ok.data == {"message_id": "m"}
    refused = decode_output(
        orjson.dumps({"type": "send", "request_id": 4, "code": 9, "message": "slow", "data": {"retry_after_ms": 5}})
    )
    error = refused.error()
    assert type(error) is ChatError and error.code == Code.RATE_LIMITED and error.retry_after_ms == 5
    gap = decode_output(
        '{"type":"sync","request_id":5,"code":12,"message":"gone","data":{"from_seq":3,"to_seq":5,"resume_seq":5}}'
    ).error()
    assert isinstance(gap, GapNotRecoverable) and (gap.from_seq, gap.to_seq, gap.resume_seq) == (3, 5, 5)
    assert "NOT_RECOVERABLE (12)" in str(gap)
    for bad in ("nope", "[]", '{"type": 1}', '{"type":"x","request_id":true}', '{"type":"x","code":"0"}'):
        with pytest.raises(ValueError):
            decode_output(bad)


def test_models_from_data() -> None:
    info = SignInInfo.from_data(
        {"user_id": "a", "session_id": "s", "edge_id": "e", "device_id": "d", "heartbeat_s": 15, "last_user_seq": 9}
    )
    assert info.heartbeat_s == 15.0 and info.max_frame_bytes == 65536 and info.last_user_seq == 9
    page = SyncPage.from_data({"messages": [{"user_seq": 4, "message": {"seq": 1}}], "has_more": True}, 3)
    assert page.messages[0].user_seq == 4 and page.has_more and page.last_seq == 3
    with pytest.raises(ValueError):
        SignInInfo.from_data({"user_id": "a"})
