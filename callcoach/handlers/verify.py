"""Reading and authenticating a portal's event delivery: ``portal_event`` is the one place where
an event's ``application_token`` is checked (app events and bot events alike)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from callcoach.b24.events import EventParseError, parse_event_body, tokens_equal
from callcoach.context import SERVICES, Services
from callcoach.storage import PortalRepo
from callcoach.storage.portals import Portal

log = logging.getLogger(__name__)

MAX_EVENT_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class VerifiedEvent:
    portal: Portal
    event: str
    payload: dict[str, Any]


def json_error(status: int, reason: str) -> web.HTTPException:
    cls = {400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden}
    exc_cls = cls.get(status, web.HTTPBadRequest)
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


EventHandler = Callable[[web.Request, Services, VerifiedEvent], Awaitable[web.Response]]


def portal_event(
    what: str, label: str, portals: Callable[[Services], PortalRepo]
) -> Callable[[EventHandler], Callable[[web.Request], Awaitable[web.Response]]]:
    """A route that takes only events whose ``application_token`` checks out: a refused one is
    counted (event label ``label``), logged as ``what`` and answered 401 before the handler runs."""

    def decorate(handler: EventHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def route(request: web.Request) -> web.Response:
            services = request.app[SERVICES]
            try:
                verified = await verify_event(request, portals(services))
            except web.HTTPUnauthorized:
                services.metrics.events.labels(label, "refused").inc()
                log.warning("refused %s from %s: unknown portal or wrong token", what, request.remote)
                raise
            return await handler(request, services, verified)

        return route

    return decorate
