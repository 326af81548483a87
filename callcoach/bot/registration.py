"""Registering the bot and its commands on install (``imbot.v2.Bot.register`` is idempotent by
code; ``imbot.v2.Command.register`` by command)."""

from __future__ import annotations

import logging
from typing import Any

from callcoach.b24.client import B24Client
from callcoach.config import Settings
from callcoach.storage import Store
from callcoach.storage.portals import Portal

log = logging.getLogger(__name__)

BOT_CODE = "callcoach"
BOT_PATH = "/b24/bot"
BOT_NAME = "callcoach"
BOT_POSITION = "Помощник по звонкам"
BOT_COLOR = "AQUA"

# (command, title, params hint)
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("help", "Что умеет бот", ""),
    ("tips", "Как ответить на возражение", "категория или слова клиента"),
    ("stats", "Статистика звонков", "сегодня|неделя|месяц @менеджер"),
    ("call", "Разбор звонка", "ID звонка или номер сделки"),
    ("categories", "Категории возражений", "add|export|import|accept|reject"),
)


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


async def register_bot(settings: Settings, store: Store, portal: Portal, client: B24Client) -> int:
    result = await client.call("imbot.v2.Bot.register", {"fields": bot_fields(settings)}, idempotent=True)
    bot_id = _bot_id(result)
    fresh = await store.portals.get(portal.id)
    if fresh is None or fresh.bot_id != bot_id:
        # A different bot starts its own event stream: the old offset means nothing for it.
        await store.portals.set_fields(portal.id, bot_id=bot_id, bot_event_offset=0)
    for command, title, hint in COMMANDS:
        fields: dict[str, Any] = {"command": command, "title": {"ru": title, "en": title}, "common": False}
        if hint:
            fields["params"] = {"ru": hint, "en": hint}
        await client.call("imbot.v2.Command.register", {"botId": bot_id, "fields": fields}, idempotent=True)
    log.info("bot %s registered on %s (%s mode)", bot_id, portal.domain, bot_fields(settings)["eventMode"])
    return bot_id
