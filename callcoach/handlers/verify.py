"""Reading and authenticating a portal's event delivery (shared by app and bot events)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from callcoach.b24.events import EventParseError, parse_event_body, tokens_equal
from callcoach.storage import PortalRepo
from callcoach.storage.portals import Portal

MAX_EVENT_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class VerifiedEvent:
    portal: Portal
    event: str
    payload: dict[str, Any]


def json_error(status: int, reason: str) -> web.HTTPException:
    cls = {
        400: web.HTTPBadRequest,
        401: web.HTTPUnauthorized,
        403: web.HTTPForbidden,
        413: web.HTTPRequestEntityTooLarge,
    }
    exc_cls = cls.get(status, web.HTTPBadRequest)
    if exc_cls is web.HTTPRequestEntityTooLarge:
        return web.HTTPRequestEntityTooLarge(max_size=MAX_EVENT_BYTES, actual_size=0, text=reason)
    return exc_cls(text=json.dumps({"error": reason}), content_type="application/json")


async def read_payload(request: web.Request) -> dict[str, Any]:
    """The body as a nested dict; 400 with a reason when it cannot be read."""
    if request.content_length is not None and request.content_length > MAX_EVENT_BYTES:
        raise json_error(400, "body too large")
    body = await request.read()
    try:
        return parse_event_body(request.content_type, body)
    except EventParseError as exc:
        raise json_error(400, f"malformed body: {exc.reason}") from None


async def verify_event(request: web.Request, portals: PortalRepo) -> VerifiedEvent:
    """Authenticate by ``auth[application_token]`` against the token stored at install.

    Unknown portal, uninstalled portal or a wrong token: 401, and the caller stores nothing.
    """
    payload = await read_payload(request)
    event = str(payload.get("event") or "").upper()
    if not event:
        raise json_error(400, "no event name")
    auth = payload.get("auth") if isinstance(payload.get("auth"), dict) else {}
    token = str((auth or {}).get("application_token") or "")
    member_id = str((auth or {}).get("member_id") or "")
    domain = str((auth or {}).get("domain") or "")
    portal = await portals.by_member(member_id) if member_id else None
    if portal is None and domain:
        portal = await portals.by_domain(domain)
    # Compare even when the portal is unknown, so timing tells nothing about which portals exist.
    stored = portal.application_token if portal is not None else "x" * 32
    if not tokens_equal(stored, token) or portal is None or not portal.installed or not token:
        raise json_error(401, "unknown portal or wrong application_token")
    return VerifiedEvent(portal, event, payload)
