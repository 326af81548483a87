"""Bot handlers, one router per concern. ``routers()`` gives them in dispatch order."""

from __future__ import annotations

from callcoach.bot.router import Router


def routers() -> list[Router]:
    from callcoach.bot.handlers import calls, categories, chat, help, lifecycle, stats, tips

    # free chat goes last: it takes whatever the others did not
    return [
        lifecycle.router(),
        help.router(),
        tips.router(),
        stats.router(),
        calls.router(),
        categories.router(),
        chat.router(),
    ]
