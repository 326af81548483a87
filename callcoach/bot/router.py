"""A small aiogram-like router: filters decide which handler takes an event, handlers act.

Each concern (help, tips, stats, calls, categories, free chat, lifecycle) builds its own
``Router``; the ``Dispatcher`` asks them in order and runs the first matching handler.
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


# --- filters -------------------------------------------------------------------------------------
def is_kind(*kinds: EventKind) -> Filter:
    return lambda event: event.kind in kinds


def is_command(*names: str) -> Filter:
    wanted = {n.lower().lstrip("/") for n in names}
    return lambda event: event.kind in ("message", "command") and event.command in wanted


def is_free_text() -> Filter:
    return lambda event: event.kind == "message" and not event.command and bool(event.text.strip())


def is_unknown_command(known: Callable[[], set[str]]) -> Filter:
    return lambda event: (
        event.kind in ("message", "command") and bool(event.command) and (event.command not in known())
    )


@dataclass
class Route:
    filter: Filter
    handler: Handler
    commands: tuple[str, ...] = ()


@dataclass
class Router:
    name: str
    routes: list[Route] = field(default_factory=list)

    def add(self, filter: Filter, handler: Handler, *, commands: Sequence[str] = ()) -> None:
        self.routes.append(Route(filter, handler, tuple(commands)))

    def command(self, *names: str) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            self.add(is_command(*names), handler, commands=names)
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

    def known_commands(self) -> set[str]:
        return {c for r in self.routers for route in r.routes for c in route.commands}

    async def dispatch(self, ctx: BotContext) -> bool:
        """Run the first handler whose filter matches; False when none did."""
        for router in self.routers:
            handler = router.match(ctx.event)
            if handler is not None:
                log.debug("bot event %s → %s", ctx.event.kind, router.name)
                await handler(ctx)
                return True
        return False
