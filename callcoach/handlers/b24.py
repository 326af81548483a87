"""Portal-facing routes: the install path and the event handler. Verify, parse, hand over to the
services, answer — the work itself happens in the background."""

from __future__ import annotations

import json
import logging

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from callcoach.context import SERVICES, Services
from callcoach.handlers.install import handle_install, install_info
from callcoach.handlers.verify import VerifiedEvent, json_error, portal_event
from callcoach.installer import EVENTS_PATH, INSTALL_PATH
from callcoach.workflow.intake import EventRejected

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.post(INSTALL_PATH)
async def install(request: web.Request) -> web.Response:
    # both install forms (frame page, ONAPPINSTALL), verified before anything is stored
    try:
        return await handle_install(request)
    finally:
        request.app[SERVICES].intake.portals.forget()  # a new application_token counts from now on


@routes.get(INSTALL_PATH)
async def install_get(request: web.Request) -> web.Response:
    return await install_info(request)


@routes.post(EVENTS_PATH)
@portal_event("an event", "?", lambda services: services.intake.portals)
async def events(request: web.Request, services: Services, verified: VerifiedEvent) -> web.Response:
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


def setup(app: web.Application) -> None:
    app.add_routes(routes)
