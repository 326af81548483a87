"""A small aiogram-like router: filters decide which handler takes an event, handlers act.

Each concern (help, tips, stats, calls, categories, free chat, lifecycle) is one module of
``callcoach.bot.handlers`` with a ``router()``; a command is declared once, as a ``BotCommand`` on
its router, and the Bitrix24 registration, /help and the hint are all built from those.
The ``Dispatcher`` asks the routers in order and runs the first matching handler.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from callcoach.bot.events import BotEvent, EventKind

if TYPE_CHECKING:
    from callcoach.bot.context import BotContext

log = logging.getLogger(__name__)

Filter = Callable[[BotEvent], bool]
Handler = Callable[["BotContext"], Awaitable[None]]


@dataclass(frozen=True)
class BotCommand:
    """One chat command: what Bitrix24 registers (``name``, ``title``, ``params``), the words that
    also call it when typed, its lines in /help and its short form in the hint (BB-code)."""

    name: str
    title: str
    help: str
    hint: str
    params: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def words(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


# --- filters -------------------------------------------------------------------------------------
def is_kind(*kinds: EventKind) -> Filter:
    return lambda event: event.kind in kinds


def is_command(*names: str) -> Filter:
    wanted = {n.lower().lstrip("/") for n in names}
    return lambda event: event.kind in ("message", "command") and event.command in wanted


@dataclass
class Route:
    filter: Filter
    handler: Handler


@dataclass
class Router:
    name: str
    # dispatch order: lower first; the free chat goes last, it takes whatever the others did not
    priority: int = 50
    routes: list[Route] = field(default_factory=list)
    commands: list[BotCommand] = field(default_factory=list)

    def add(self, filter: Filter, handler: Handler) -> None:
        self.routes.append(Route(filter, handler))

    def command(self, command: BotCommand) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            self.commands.append(command)
            self.add(is_command(*command.words), handler)
            return handler

        return decorate

    def on(self, filter: Filter) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            self.add(filter, handler)
            return handler

        return decorate

    def match(self, event: BotEvent) -> Handler | None:
        for route in self.routes:
            if route.filter(event):
                return route.handler
        return None


class Dispatcher:
    def __init__(self, routers: Sequence[Router]) -> None:
        self.routers = list(routers)

    async def dispatch(self, ctx: BotContext) -> bool:
        """Run the first handler whose filter matches; False when none did."""
        for router in self.routers:
            handler = router.match(ctx.event)
            if handler is not None:
                log.debug("bot event %s → %s", ctx.event.kind, router.name)
                await handler(ctx)
                return True
        return False
