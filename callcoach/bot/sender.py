"""Sending bot messages: split to the messenger's limit, keyboard on the last part only."""

from __future__ import annotations

import logging
from typing import Any

from callcoach.b24.client import B24Client
from callcoach.b24.errors import B24Error
from callcoach.bot.formatting import MAX_MESSAGE, split_message

log = logging.getLogger(__name__)


async def send_text(
    client: B24Client,
    bot_id: int,
    dialog_id: str,
    text: str,
    *,
    keyboard: dict[str, Any] | None = None,
    limit: int = MAX_MESSAGE,
) -> list[int]:
    """Send ``text`` (BB-code) as one or more messages; returns the message ids."""
    parts = split_message(text, limit) or ["…"]
    ids: list[int] = []
    for n, part in enumerate(parts):
        fields: dict[str, Any] = {"message": part}
        if keyboard and n == len(parts) - 1:
            fields["keyboard"] = {"BOT_ID": bot_id, **keyboard}
        result = await client.call(
            "imbot.v2.Chat.Message.send", {"botId": bot_id, "dialogId": dialog_id, "fields": fields}
        )
        if isinstance(result, dict) and result.get("id") is not None:
            ids.append(int(result["id"]))
    return ids


async def typing(client: B24Client, bot_id: int, dialog_id: str) -> None:
    """Show 'the bot is typing' (best effort: a failure must not stop the answer)."""
    try:
        await client.call(
            "imbot.v2.Chat.InputAction.notify", {"botId": bot_id, "dialogId": dialog_id}, idempotent=True
        )
    except B24Error as exc:
        log.debug("typing indicator failed: %s", exc.code)
