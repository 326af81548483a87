"""Signed, expiring links to call pages and the dashboard's session token.

Both are HMAC-SHA256 over a message that starts with its purpose ("call:" / "session:"), so a
signature made for one can never be replayed as the other even though they share the app's key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from callcoach.config import Settings


def _now(now: float | None) -> int:
    return int(time.time() if now is None else now)


def _mac(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def call_link_signature(key: bytes, job_id: str | int, exp: int) -> str:
    return _mac(key, f"call:{job_id}:{int(exp)}")


def sign_call_link(key: bytes, base_url: str, job_id: str | int, ttl_s: int, now: float | None = None) -> str:
    """``{base_url}/calls/{job_id}?exp=<unix>&sig=<hmac>`` valid for ``ttl_s`` seconds."""
    exp = _now(now) + int(ttl_s)
    query = urlencode({"exp": exp, "sig": call_link_signature(key, job_id, exp)})
    return f"{base_url.rstrip('/')}/calls/{quote(str(job_id), safe='')}?{query}"


def call_page_url(settings: Settings, job_id: str | int) -> str | None:
    """The signed link to a call's page for the texts people get; None without a public URL."""
    base = settings.public_base()
    if not base:
        return None
    return sign_call_link(settings.signing_key(), base, job_id, settings.link_ttl_days * 86400)


def verify_call_link(
    key: bytes, job_id: str | int, exp: str | int | None, sig: str | None, now: float | None = None
) -> bool:
    """True when ``sig`` was made by ``key`` for this job and ``exp`` has not passed."""
    if not sig or exp is None:
        return False
    try:
        exp_i = int(exp)
    except (TypeError, ValueError):
        return False
    if exp_i < _now(now):
        return False
    return hmac.compare_digest(call_link_signature(key, job_id, exp_i), str(sig))


@dataclass(frozen=True)
class Session:
    member_id: str
    user_id: int
    user_name: str
    is_admin: bool
    exp: int


def sign_session(
    key: bytes,
    *,
    member_id: str,
    user_id: int,
    user_name: str = "",
    is_admin: bool = False,
    ttl_s: int,
    now: float | None = None,
) -> str:
    payload = {"m": member_id, "u": user_id, "n": user_name, "a": is_admin, "exp": _now(now) + ttl_s}
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{body}.{_mac(key, 'session:' + body)}"


def verify_session(key: bytes, token: str | None, now: float | None = None) -> Session | None:
    """The session a token carries, or None when it is forged, malformed or expired."""
    if not token or token.count(".") != 1:
        return None
    body, sig = token.split(".")
    if not hmac.compare_digest(_mac(key, "session:" + body), sig):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        session = Session(
            member_id=str(payload["m"]),
            user_id=int(payload["u"]),
            user_name=str(payload.get("n", "")),
            is_admin=bool(payload.get("a", False)),
            exp=int(payload["exp"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
    return session if session.exp >= _now(now) else None
