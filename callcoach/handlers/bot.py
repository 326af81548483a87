"""The chat bot feature in the app: its webhook route (events checked like every portal event),
and its service started and closed with the app. The bot's work is ``callcoach.bot``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from callcoach.bot.registration import BOT_PATH
from callcoach.bot.wiring import start_bot
from callcoach.context import SERVICES, Services
from callcoach.handlers.verify import VerifiedEvent, portal_event


@portal_event("a bot event", "bot", lambda services: services.store.portals)
async def bot_events(request: web.Request, services: Services, verified: VerifiedEvent) -> web.Response:
    service = services.bot
    if service is None:
        return web.json_response({"result": "no bot"})
    data = verified.payload.get("data")
    service.accept(verified.portal, verified.event, data if isinstance(data, dict) else {})
    services.metrics.events.labels(verified.event, "accepted").inc()
    return web.json_response({"result": "accepted"})


async def _bot(app: web.Application) -> AsyncIterator[None]:
    service = start_bot(app[SERVICES])
    try:
        yield
    finally:
        await service.close()


def setup(app: web.Application) -> None:
    app.router.add_post(BOT_PATH, bot_events)
    app.cleanup_ctx.append(_bot)
