"""Bot events (webhook deliveries and ``imbot.v2.Event.get`` rows) read into one typed record."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from callcoach.values import as_int

EventKind = Literal["message", "command", "join", "delete", "other"]

EVENT_KINDS: dict[str, EventKind] = {
    "ONIMBOTV2MESSAGEADD": "message",
    "ONIMBOTV2COMMANDADD": "command",
    "ONIMBOTV2JOINCHAT": "join",
    "ONIMBOTV2DELETE": "delete",
}

_TYPED_COMMAND = re.compile(r"^/([A-Za-zА-Яа-яЁё_]+)(?:@\S+)?(?:\s+(.*))?$", re.S)


@dataclass(frozen=True)
class BotEvent:
    kind: EventKind
    bot_id: int | None
    dialog_id: str
    user_id: int
    text: str = ""
    command: str = ""  # lowercase, without the slash
    params: str = ""
    context: str = ""  # textarea | keyboard | menu (command events)
    message_id: int | None = None
    chat_type: str = ""
    user_name: str = ""

    @property
    def is_command(self) -> bool:
        return bool(self.command)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_bot_event(event_type: str, data: dict[str, Any]) -> BotEvent:
    """Read ``data`` of an ONIMBOTV2* event. A message typed as ``/cmd args`` counts as a command
    (the issue asks for commands to be understood when typed, not only picked from the menu)."""
    kind = EVENT_KINDS.get(event_type.upper(), "other")
    bot = _dict(data.get("bot"))
    message = _dict(data.get("message"))
    chat = _dict(data.get("chat"))
    user = _dict(data.get("user"))
    command_block = _dict(data.get("command"))
    user_id = as_int(message.get("authorId")) or as_int(user.get("id")) or 0
    dialog_id = str(chat.get("dialogId") or data.get("dialogId") or (user_id if user_id else ""))
    text = str(message.get("text") or "")
    command = ""
    params = ""
    if kind == "command":
        command = str(command_block.get("command") or "").strip().lstrip("/").lower()
        params = str(command_block.get("params") or "").strip()
    elif kind == "message":
        typed = _TYPED_COMMAND.match(text.strip())
        if typed:
            command = typed.group(1).lower()
            params = (typed.group(2) or "").strip()
    return BotEvent(
        kind=kind,
        bot_id=as_int(bot.get("id")),
        dialog_id=dialog_id,
        user_id=user_id,
        text=text,
        command=command,
        params=params,
        context=str(command_block.get("context") or ""),
        message_id=as_int(message.get("id")),
        chat_type=str(chat.get("type") or ""),
        user_name=str(user.get("name") or ""),
    )
