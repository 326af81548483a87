"""The chat bot's service on a process's services: its install step, the fetch-mode poll and the
manager's message after each call. The web tier's ``handlers/bot.py`` calls it."""

from __future__ import annotations

from callcoach.bot.context import BotDeps
from callcoach.bot.notify import notify_commands, notify_manager
from callcoach.bot.service import BotService
from callcoach.context import Scheduled, Services


def start_bot(services: Services) -> BotService:
    settings = services.settings
    deps = BotDeps(
        settings=settings,
        store=services.store,
        directory=services.directory,
        analyzer=services.analyzer,
        llm=services.llm,
    )
    service = BotService(deps, services.clients.for_portal)
    services.bot = service
    services.installer.add_step("chat bot", service.register)
    services.notify = notify_manager
    services.notify_commands = notify_commands  # the write-back batches the message
    services.scheduled.append(Scheduled("bot-poll", service.poll_all, settings.bot_poll_seconds))
    return service
