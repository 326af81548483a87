from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from callcoach.report.links import sign_call_link, sign_session, verify_call_link, verify_session

KEY = b"k" * 32
NOW = 1_750_000_000


def _parts(url: str) -> tuple[str, str, str]:
    split = urlsplit(url)
    q = parse_qs(split.query)
    return split.path, q["exp"][0], q["sig"][0]


def test_call_link_round_trip_and_expiry() -> None:
    url = sign_call_link(KEY, "https://app.example/", 42, ttl_s=3600, now=NOW)
    path, exp, sig = _parts(url)
    assert url.startswith("https://app.example/calls/42?")
    assert path == "/calls/42" and int(exp) == NOW + 3600
    assert verify_call_link(KEY, "42", exp, sig, now=NOW + 10)
    assert verify_call_link(KEY, 42, exp, sig, now=NOW + 3600)
    assert not verify_call_link(KEY, "42", exp, sig, now=NOW + 3601)  # expired


def test_call_link_rejects_tampering() -> None:
    _, exp, sig = _parts(sign_call_link(KEY, "https://app.example", "42", ttl_s=60, now=NOW))
    assert not verify_call_link(KEY, "43", exp, sig, now=NOW)  # another call
    assert not verify_call_link(KEY, "42", str(int(exp) + 1000), sig, now=NOW)  # longer life
    assert not verify_call_link(b"other-key", "42", exp, sig, now=NOW)
    assert not verify_call_link(KEY, "42", exp, sig[:-1] + ("A" if sig[-1] != "A" else "B"), now=NOW)
    assert not verify_call_link(KEY, "42", "soon", sig, now=NOW)
    assert not verify_call_link(KEY, "42", None, None, now=NOW)


def test_session_token() -> None:
    token = sign_session(KEY, member_id="m1", user_id=7, user_name="Ива", ttl_s=60, now=NOW)
    session = verify_session(KEY, token, now=NOW + 30)
    assert session is not None and (session.member_id, session.user_id, session.user_name) == ("m1", 7, "Ива")
    assert verify_session(KEY, token, now=NOW + 61) is None
    assert verify_session(b"other", token, now=NOW) is None
    body, sig = token.split(".")
    forged = sign_session(KEY, member_id="m2", user_id=7, ttl_s=60, now=NOW).split(".")[0]
    assert verify_session(KEY, f"{forged}.{sig}", now=NOW) is None
    assert verify_session(KEY, "garbage", now=NOW) is None
    # a call-link signature is no session signature: the purposes are separated
    _, _exp, link_sig = _parts(sign_call_link(KEY, "http://x", body, ttl_s=60, now=NOW))
    assert verify_session(KEY, f"{body}.{link_sig}", now=NOW) is None
