"""The bot removed from the portal: forget its id so that nothing is sent or polled for it."""

from __future__ import annotations

import logging

from callcoach.bot.context import BotContext
from callcoach.bot.router import Router, is_kind

log = logging.getLogger(__name__)


async def bot_deleted(ctx: BotContext) -> None:
    current = ctx.portal.bot_id
    if current is not None and ctx.event.bot_id not in (None, current):
        return  # an older bot of ours went away; the registered one stays
    await ctx.deps.store.portals.set_fields(ctx.portal.id, bot_id=None, bot_event_offset=0)
    log.info("bot removed from %s", ctx.portal.domain)


def router() -> Router:
    r = Router("lifecycle", priority=0)
    r.on(is_kind("delete"))(bot_deleted)
    return r
