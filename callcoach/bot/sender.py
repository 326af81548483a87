"""Sending bot messages: split to the messenger's limit, keyboard on the last part only."""

from __future__ import annotations

import logging
from typing import Any

from callcoach.b24.client import B24Client
from callcoach.b24.errors import B24Error
from callcoach.bot.formatting import MAX_MESSAGE, split_message

log = logging.getLogger(__name__)


def message_commands(
    bot_id: int,
    dialog_id: str,
    text: str,
    *,
    keyboard: dict[str, Any] | None = None,
    limit: int = MAX_MESSAGE,
) -> list[tuple[str, dict[str, Any]]]:
    """The REST commands that send ``text`` (BB-code) as one or more messages (for a batch)."""
    parts = split_message(text, limit) or ["…"]
    commands: list[tuple[str, dict[str, Any]]] = []
    for n, part in enumerate(parts):
        fields: dict[str, Any] = {"message": part}
        if keyboard and n == len(parts) - 1:
            fields["keyboard"] = {"BOT_ID": bot_id, **keyboard}
        commands.append(
            ("imbot.v2.Chat.Message.send", {"botId": bot_id, "dialogId": dialog_id, "fields": fields})
        )
    return commands


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
    ids: list[int] = []
    for method, params in message_commands(bot_id, dialog_id, text, keyboard=keyboard, limit=limit):
        result = await client.call(method, params)
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
