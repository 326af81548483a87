"""Bot handlers, one module per concern, each with a ``router()``. Adding a command is adding a
module here: its router declares the ``BotCommand``, and registration, /help and the hint follow."""

from __future__ import annotations

import importlib
import pkgutil

from callcoach.bot.router import BotCommand, Router


def routers() -> list[Router]:
    """Every module's router, in dispatch order."""
    found = [importlib.import_module(f"{__name__}.{m.name}").router() for m in pkgutil.iter_modules(__path__)]
    return sorted(found, key=lambda r: (r.priority, r.name))


def commands() -> list[BotCommand]:
    """The chat commands, in the order /help shows them and Bitrix24 registers them."""
    return [c for r in routers() for c in r.commands]
