"""Plugs the chat bot into the app: the webhook route, the install step, the fetch-mode poll,
the manager notification after each call, and shutdown."""

from __future__ import annotations

import logging

from aiohttp import web

from callcoach.bot.context import BotDeps
from callcoach.bot.notify import notify_commands, notify_manager
from callcoach.bot.registration import BOT_PATH, COMMANDS
from callcoach.bot.service import BotService
from callcoach.context import SERVICES, Services
from callcoach.handlers.verify import verify_event

log = logging.getLogger(__name__)


async def bot_events(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        verified = await verify_event(request, services.store.portals)
    except web.HTTPUnauthorized:
        services.metrics.events.labels("bot", "refused").inc()
        log.warning("refused a bot event from %s: unknown portal or wrong token", request.remote)
        raise
    service: BotService | None = services.bot
    if service is None:
        return web.json_response({"result": "no bot"})
    data = verified.payload.get("data")
    service.accept(verified.portal, verified.event, data if isinstance(data, dict) else {})
    services.metrics.events.labels(verified.event, "accepted").inc()
    return web.json_response({"result": "accepted"})


def setup(app: web.Application) -> None:
    app.router.add_post(BOT_PATH, bot_events)


async def start(services: Services) -> None:
    settings = services.settings
    if services.llm is None:
        from callcoach.llm.factory import build_llm

        services.llm = build_llm(settings, session=services.session)
        if services.llm is not None:
            services.extras.setdefault("closers", []).append(services.llm.close)
    deps = BotDeps(
        settings=settings,
        store=services.store,
        directory=services.directory,
        analyzer=services.analyzer,
        llm=services.llm,
        commands=[c for c, _, _ in COMMANDS],
    )
    service = BotService(deps, services.clients.for_portal)
    services.bot = service
    services.installer.add_step("chat bot", service.register)
    services.extras["notify"] = notify_manager
    services.extras["notify_commands"] = notify_commands  # the write-back batches the message
    services.extras.setdefault("scheduled", []).append(
        ("bot-poll", service.poll_all, settings.bot_poll_seconds)
    )
    services.extras.setdefault("closers", []).append(service.close)
