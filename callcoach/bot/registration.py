"""Registering the bot and its commands on install (``imbot.v2.Bot.register`` is idempotent by
code; ``imbot.v2.Command.register`` by command).

``bot-register.md``: a repeat register with the same code "returns the existing bot without
updating the data", so a bot registered before with another webhook URL or event mode would keep
them: ``imbot.v2.Bot.update`` (``bot-update.md``) brings them up to date.
"""

from __future__ import annotations

import logging
from typing import Any

from callcoach.b24.client import B24Client
from callcoach.bot.handlers import commands
from callcoach.config import Settings
from callcoach.storage import Store
from callcoach.storage.portals import Portal

log = logging.getLogger(__name__)

BOT_CODE = "callcoach"
BOT_PATH = "/b24/bot"
BOT_NAME = "callcoach"
BOT_POSITION = "Помощник по звонкам"
BOT_COLOR = "AQUA"


def bot_fields(settings: Settings) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "code": BOT_CODE,
        "type": "bot",
        "properties": {"name": BOT_NAME, "workPosition": BOT_POSITION, "color": BOT_COLOR},
    }
    base = settings.public_base()
    if base:
        fields["eventMode"] = "webhook"
        fields["webhookUrl"] = base + BOT_PATH
    else:
        fields["eventMode"] = "fetch"
    return fields


def _bot_id(result: Any) -> int:
    bot = result.get("bot") if isinstance(result, dict) else None
    raw = bot.get("id") if isinstance(bot, dict) else (result if isinstance(result, int | str) else None)
    try:
        return int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"imbot.v2.Bot.register answered without a bot id: {result!r}") from None


def delivery_update(answered: Any, wanted: dict[str, Any]) -> dict[str, Any] | None:
    """The ``fields`` for ``imbot.v2.Bot.update`` when the bot the portal answered delivers its
    events otherwise than ``wanted``; None when it already matches. The documented bot object
    shows ``eventMode`` but not ``webhookUrl``: in webhook mode an unseen URL counts as changed
    (an update with the same URL changes nothing, bot-update.md's subscription table)."""
    bot = answered.get("bot") if isinstance(answered, dict) else None
    bot = bot if isinstance(bot, dict) else {}
    mode = wanted.get("eventMode")
    same_mode = bot.get("eventMode") == mode
    if same_mode and (mode != "webhook" or bot.get("webhookUrl") == wanted.get("webhookUrl")):
        return None
    fields: dict[str, Any] = {"eventMode": mode}
    if mode == "webhook":
        fields["webhookUrl"] = wanted.get("webhookUrl")
    return fields


async def register_bot(settings: Settings, store: Store, portal: Portal, client: B24Client) -> int:
    wanted = bot_fields(settings)
    result = await client.call("imbot.v2.Bot.register", {"fields": wanted}, idempotent=True)
    bot_id = _bot_id(result)
    update = delivery_update(result, wanted)
    if update is not None:
        await client.call("imbot.v2.Bot.update", {"botId": bot_id, "fields": update}, idempotent=True)
    fresh = await store.portals.get(portal.id)
    if fresh is None or fresh.bot_id != bot_id:
        # A different bot starts its own event stream: the old offset means nothing for it.
        await store.portals.set_fields(portal.id, bot_id=bot_id, bot_event_offset=0)
    for command in commands():  # the handlers' own list (callcoach.bot.handlers)
        title, hint = command.title, command.params
        fields: dict[str, Any] = {
            "command": command.name,
            "title": {"ru": title, "en": title},
            "common": False,
        }
        if hint:
            fields["params"] = {"ru": hint, "en": hint}
        await client.call("imbot.v2.Command.register", {"botId": bot_id, "fields": fields}, idempotent=True)
    log.info("bot %s registered on %s (%s mode)", bot_id, portal.domain, bot_fields(settings)["eventMode"])
    return bot_id
