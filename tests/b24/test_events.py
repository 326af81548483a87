from __future__ import annotations

import json

import pytest

from callcoach.b24 import EventParseError, parse_event_body, tokens_equal
from tests.fakes.portal import php_form


def test_form_event_is_unflattened() -> None:
    body = php_form(
        {
            "event": "ONVOXIMPLANTCALLEND",
            "data": {"CALL_ID": "x.1", "FILES": [{"ID": "5"}], "USERS": {"15": "a"}},
            "auth": {"application_token": "tok"},
        }
    ).encode()
    parsed = parse_event_body("application/x-www-form-urlencoded", body)
    assert parsed == {
        "event": "ONVOXIMPLANTCALLEND",
        "data": {"CALL_ID": "x.1", "FILES": [{"ID": "5"}], "USERS": {"15": "a"}},
        "auth": {"application_token": "tok"},
    }


def test_json_event() -> None:
    body = json.dumps({"event": "E", "data": {"A": 1}}).encode()
    assert parse_event_body("application/json; charset=utf-8", body)["data"] == {"A": 1}


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("application/json", b"{not json"),
        ("application/json", b"[1, 2]"),
        ("application/x-www-form-urlencoded", b""),
        ("application/x-www-form-urlencoded", b"data[CALL_ID=1"),
        ("application/x-www-form-urlencoded", b"a=1&a[b]=2"),
        ("application/x-www-form-urlencoded", b"\xff\xfe=1"),
        ("multipart/form-data", b"x"),
    ],
)
def test_malformed_bodies(ctype: str, body: bytes) -> None:
    with pytest.raises(EventParseError) as info:
        parse_event_body(ctype, body)
    assert info.value.reason


def test_tokens_equal() -> None:
    assert tokens_equal("abc", "abc")
    assert not tokens_equal("abc", "abd")
    assert not tokens_equal("", "")
    assert not tokens_equal(None, "abc")
