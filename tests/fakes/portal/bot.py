"""The chat bot API (imbot.v2) and the helpers that play a user talking to a bot.

A part of ``FakePortal`` (tests/fakes/portal/server.py)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tests.fakes.portal.models import MAX_BOT_MESSAGE, MSK, FakeBot, FakeError, FakeUser, _int


class BotArea:
    # --- imbot.v2 ----------------------------------------------------------------------------------
    def _bot(self, p: Mapping[str, Any]) -> FakeBot:
        bot_id = _int(p.get("botId"))
        if bot_id is None:
            raise FakeError("BOT_ID_REQUIRED", "Bot ID is required", 400)
        bot = self.bots.get(bot_id)
        if bot is None:
            raise FakeError("BOT_NOT_FOUND", "Bot not found", 400)
        return bot

    def m_imbot_v2_bot_register(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/chat-bots/chat-bots-v2/imbot.v2/bots/bot-register.md
        fields = p.get("fields") or {}
        code = fields.get("code")
        if not code:
            raise FakeError("BOT_CODE_REQUIRED", "Bot code is required", 400)
        for bot in self.bots.values():
            if bot.code == code:  # bot-register.md: "the existing bot without updating the data"
                return {"bot": bot.info(), "users": [self._bot_user(bot)]}
        props = fields.get("properties") or {}
        if not props.get("name"):
            raise FakeError("BOT_PROPERTIES_REQUIRED", "Bot properties are required", 400)
        mode = fields.get("eventMode", "fetch")
        if mode not in ("fetch", "webhook"):
            raise FakeError("BOT_INVALID_EVENT_MODE", "Invalid event mode", 400)
        if mode == "webhook" and not fields.get("webhookUrl"):
            raise FakeError("BOT_WEBHOOK_URL_REQUIRED", "Webhook URL is required", 400)
        bot = FakeBot(next(self._ids), code, props["name"], mode, fields.get("webhookUrl"), fields)
        self.bots[bot.id] = bot
        return {"bot": bot.info(), "users": [self._bot_user(bot)]}

    def m_imbot_v2_bot_update(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        """bot-update.md: ``botId`` and ``fields`` (properties, eventMode, webhookUrl...); a new
        webhookUrl or eventMode moves the bot's event subscriptions."""
        bot = self._bot(p)
        fields = p.get("fields")
        if not isinstance(fields, dict) or not fields:
            raise FakeError("BOT_FIELDS_REQUIRED", "Fields are required", 400)
        mode = fields.get("eventMode", bot.event_mode)
        if mode not in ("fetch", "webhook"):
            raise FakeError("BOT_INVALID_EVENT_MODE", "Invalid event mode", 400)
        url = fields.get("webhookUrl", bot.webhook_url)
        if mode == "webhook" and not url:
            raise FakeError("BOT_WEBHOOK_URL_REQUIRED", "Webhook URL is required", 400)
        props = fields.get("properties")
        if isinstance(props, dict):
            bot.fields["properties"] = {**(bot.fields.get("properties") or {}), **props}
            bot.name = str(props.get("name") or bot.name)
        bot.event_mode, bot.webhook_url = mode, url if mode == "webhook" else None
        return {"bot": bot.info(), "users": [self._bot_user(bot)]}

    @staticmethod
    def _bot_user(bot: FakeBot) -> dict[str, Any]:
        return {
            "id": bot.id,
            "active": True,
            "name": bot.name,
            "bot": True,
            "type": "bot",
            "workPosition": (bot.fields.get("properties") or {}).get("workPosition", ""),
        }

    def m_imbot_v2_bot_list(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/chat-bots/chat-bots-v2/imbot.v2/bots/bot-list.md
        return {"bots": [b.info() for b in self.bots.values()]}

    def m_imbot_v2_bot_unregister(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/chat-bots/chat-bots-v2/imbot.v2/bots/bot-unregister.md
        bot = self._bot(p)
        del self.bots[bot.id]
        return True

    def m_imbot_v2_command_register(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/chat-bots/chat-bots-v2/imbot.v2/commands/command-register.md
        bot = self._bot(p)
        fields = p.get("fields") or p
        command = str(fields.get("command") or "").lstrip("/")
        if not command:
            raise FakeError("COMMAND_REQUIRED", "Command is required", 400)
        if command not in bot.commands:
            bot.commands[command] = next(self._ids)
        return {"command": {"id": bot.commands[command], "command": command, "botId": bot.id}}

    def m_imbot_v2_event_get(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/chat-bots/chat-bots-v2/imbot.v2/events/event-get.md (offset confirms earlier events)
        bot = self._bot(p)
        offset = _int(p.get("offset"))
        if offset is not None:  # confirms every event with id < offset
            bot.queue = [e for e in bot.queue if e["eventId"] >= offset]
        limit = max(1, min(1000, _int(p.get("limit"), 100) or 100))
        events = bot.queue[:limit]
        next_offset = events[-1]["eventId"] + 1 if events else (offset or 0)
        return {"events": events, "nextOffset": next_offset, "hasMore": len(bot.queue) > len(events)}

    def m_imbot_v2_chat_message_send(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/chat-bots/chat-bots-v2/imbot.v2/messages/chat-message-send.md:
        # at most 20,000 characters
        bot = self._bot(p)
        dialog_id = p.get("dialogId")
        fields = p.get("fields") or {}
        text = fields.get("message") or ""
        if not dialog_id:
            raise FakeError("DIALOG_ID_REQUIRED", "Dialog ID is required", 400)
        if not text and not fields.get("attach"):
            raise FakeError("EMPTY_MESSAGE", "Message is empty", 400)
        if len(text) > MAX_BOT_MESSAGE:
            raise FakeError("MESSAGE_TOO_LONG", f"Message is longer than {MAX_BOT_MESSAGE} characters", 400)
        mid = next(self._ids)
        self.bot_messages.append(
            {
                "id": mid,
                "botId": bot.id,
                "dialogId": str(dialog_id),
                "message": text,
                "keyboard": fields.get("keyboard"),
                "attach": fields.get("attach"),
            }
        )
        return {"id": mid, "uuidMap": {}}

    def m_imbot_v2_chat_inputaction_notify(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/chat-bots/chat-bots-v2/imbot.v2/ui/chat-input-action-notify.md
        bot = self._bot(p)
        self.input_actions.append({"botId": bot.id, "dialogId": p.get("dialogId")})
        return True

    # --- bot helpers added for tests/bot (chat bot helper) ------------------------------------------
    async def bot_delete(self, bot: str | int) -> dict[str, Any] | None:
        """An admin removes the bot: ONIMBOTV2DELETE is delivered (webhook) or queued (fetch)."""
        b = self._find_bot(bot)
        return await self._bot_event(b, "ONIMBOTV2DELETE", {"language": "ru"})

    # --- the portal's side of a chat: bot events delivered or queued --------------------------------
    def _find_bot(self, bot: str | int) -> FakeBot:
        for candidate in self.bots.values():
            if candidate.id == _int(bot) or candidate.code == bot:
                return candidate
        raise KeyError(f"no bot {bot!r} registered")

    def _chat(self, user_id: int, dialog_id: str | None) -> dict[str, Any]:
        if dialog_id and dialog_id.startswith("chat"):
            return {"id": int(dialog_id[4:]), "dialogId": dialog_id, "type": "chat", "name": "Чат"}
        return {"id": 100 + user_id, "dialogId": str(user_id), "type": "private", "name": ""}

    def _user_obj(self, user_id: int) -> dict[str, Any]:
        u = self.users.get(user_id) or FakeUser(user_id, f"User{user_id}")
        return {
            "id": u.id,
            "active": True,
            "name": f"{u.name} {u.last_name}".strip(),
            "firstName": u.name,
            "lastName": u.last_name,
            "bot": False,
            "type": "employee",
            "departments": u.department_ids,
        }

    async def _bot_event(self, bot: FakeBot, event: str, data: dict[str, Any]) -> dict[str, Any] | None:
        if bot.event_mode == "webhook" and bot.webhook_url:
            if not self.app_installed:  # installation-finish.md: no events before installFinish
                self.withheld_events.append({"event": event, "data": data})
                return None
            bot_block = {"id": bot.id, "code": bot.code, "auth": self._auth_block()}
            payload = {
                "event": event,
                "data": {"bot": bot_block, **data},
                "ts": int(time.time()),
                "auth": {
                    "domain": self.domain,
                    "member_id": self.member_id,
                    "application_token": self.application_token,
                },
            }
            return await self._post_form(bot.webhook_url, payload)
        bot.queue.append(
            {
                "eventId": next(self._event_seq),
                "type": event,
                "date": datetime.now(MSK).isoformat(timespec="seconds"),
                "data": {"bot": bot.info(), **data},
            }
        )
        return None

    async def bot_user_says(
        self, bot: str | int, user_id: int, text: str, dialog_id: str | None = None
    ) -> dict[str, Any] | None:
        """A user writes to the bot: webhook mode → POST ONIMBOTV2MESSAGEADD; fetch mode → queued."""
        b = self._find_bot(bot)
        chat = self._chat(user_id, dialog_id)
        message = {
            "id": next(self._ids),
            "chatId": chat["id"],
            "authorId": user_id,
            "text": text,
            "date": datetime.now(MSK).isoformat(timespec="seconds"),
            "isSystem": False,
            "params": {},
        }
        return await self._bot_event(
            b,
            "ONIMBOTV2MESSAGEADD",
            {"message": message, "chat": chat, "user": self._user_obj(user_id), "language": "ru"},
        )

    async def bot_command(
        self, bot: str | int, user_id: int, command: str, params: str = "", dialog_id: str | None = None
    ) -> dict[str, Any] | None:
        b = self._find_bot(bot)
        name = command.lstrip("/")
        chat = self._chat(user_id, dialog_id)
        message = {
            "id": next(self._ids),
            "chatId": chat["id"],
            "authorId": user_id,
            "text": f"/{name} {params}".strip(),
            "isSystem": False,
            "params": {},
        }
        return await self._bot_event(
            b,
            "ONIMBOTV2COMMANDADD",
            {
                "command": {
                    "id": b.commands.get(name, 0),
                    "command": f"/{name}",
                    "params": params,
                    "context": "textarea",
                },
                "message": message,
                "chat": chat,
                "user": self._user_obj(user_id),
                "language": "ru",
            },
        )

    async def bot_join(
        self, bot: str | int, user_id: int, dialog_id: str | None = None
    ) -> dict[str, Any] | None:
        b = self._find_bot(bot)
        chat = self._chat(user_id, dialog_id)
        return await self._bot_event(
            b,
            "ONIMBOTV2JOINCHAT",
            {"dialogId": chat["dialogId"], "chat": chat, "user": self._user_obj(user_id), "language": "ru"},
        )
