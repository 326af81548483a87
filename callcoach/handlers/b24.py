"""Portal-facing routes: the install path and the event handler. Verify, parse, hand over to the
services, answer — the work itself happens in the background."""

from __future__ import annotations

import json
import logging

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from callcoach.context import SERVICES
from callcoach.handlers.verify import json_error, read_payload, verify_event
from callcoach.installer import EVENTS_PATH, INSTALL_PATH, InstallError
from callcoach.workflow.intake import EventRejected

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.post(INSTALL_PATH)
async def install(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    payload = await read_payload(request)
    event = str(payload.get("event") or "").upper()
    if event != "ONAPPINSTALL":
        raise json_error(400, "expected the ONAPPINSTALL event")
    auth = payload.get("auth")
    if not isinstance(auth, dict):
        raise json_error(400, "no auth block")
    if any(isinstance(value, (dict, list)) for value in auth.values()):
        raise json_error(400, "auth fields must be text")  # PHP sends them as strings
    try:
        result = await services.installer.install(auth)
    except InstallError as exc:
        raise json_error(400, str(exc)) from None
    finally:
        services.intake.portals.forget()  # a new application_token counts from now on
    services.metrics.events.labels("ONAPPINSTALL", "installed").inc()
    return web.json_response({"result": "installed", "bound": result.bound, "warnings": result.warnings})


@routes.post(EVENTS_PATH)
async def events(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        verified = await verify_event(request, services.intake.portals)
    except web.HTTPUnauthorized:
        services.metrics.events.labels("?", "refused").inc()
        log.warning("refused an event from %s: unknown portal or wrong token", request.remote)
        raise
    if verified.event == "ONAPPUNINSTALL":
        data = verified.payload.get("data") or {}
        clean = str(data.get("CLEAN", "0")) in ("1", "Y", "true") if isinstance(data, dict) else False
        await services.installer.uninstall(verified.portal, clean=clean)
        services.intake.portals.forget()
        services.metrics.events.labels(verified.event, "uninstalled").inc()
        return web.json_response({"result": "uninstalled"})
    try:
        outcome = await services.intake.accept(verified.portal, verified.event, verified.payload)
    except EventRejected as exc:
        raise json_error(400, str(exc)) from None
    except SQLAlchemyError as exc:  # not stored, so not acknowledged: say so rather than 500
        log.error("could not store a %s event: %s", verified.event, type(exc).__name__)
        raise web.HTTPServiceUnavailable(
            text=json.dumps({"error": "the event could not be stored, try again"}),
            content_type="application/json",
        ) from None
    services.metrics.events.labels(verified.event, outcome).inc()
    return web.json_response({"result": outcome})
