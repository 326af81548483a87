"""The chat bot: takes events (webhook deliveries or fetched with ``imbot.v2.Event.get``),
dispatches them to the handlers, and keeps its background work in a set it can drain and stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from callcoach.b24.client import B24Client
from callcoach.b24.errors import B24Error
from callcoach.bot.context import BotContext, BotDeps
from callcoach.bot.events import BotEvent, parse_bot_event
from callcoach.bot.handlers import routers
from callcoach.bot.registration import register_bot
from callcoach.bot.router import Dispatcher
from callcoach.storage.portals import Portal
from callcoach.values import as_int

log = logging.getLogger(__name__)

SORRY = "Не получилось ответить: внутренняя ошибка. Попробуйте ещё раз чуть позже."
FETCH_LIMIT = 100
MAX_FETCH_ROUNDS = 20  # per poll: a backlog is worked off over several polls, not in one go
SEEN_PER_PORTAL = 500


class BotService:
    def __init__(
        self, deps: BotDeps, client_for: Callable[[Portal], B24Client], dispatcher: Dispatcher | None = None
    ) -> None:
        self.deps = deps
        self.client_for = client_for
        self.dispatcher = dispatcher or Dispatcher(routers())
        self._tasks: set[asyncio.Task[None]] = set()
        # A typed command may arrive twice (message + command event): answer once per message id.
        self._seen: dict[int, deque[int]] = {}
        self._closed = False

    # --- install ---------------------------------------------------------------------------
    async def register(self, portal: Portal, client: B24Client) -> None:
        await register_bot(self.deps.settings, self.deps.store, portal, client)

    # --- events ----------------------------------------------------------------------------
    def accept(self, portal: Portal, event_type: str, data: dict[str, Any]) -> None:
        """Webhook delivery: answer the HTTP request now, work in the background."""
        if self._closed:
            return
        task = asyncio.create_task(self.handle(portal, event_type, data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _first_time(self, portal_id: int, event: BotEvent) -> bool:
        if (
            event.message_id is None
            or event.kind not in ("message", "command")
            or event.context == "keyboard"
        ):
            return True
        seen = self._seen.setdefault(portal_id, deque(maxlen=SEEN_PER_PORTAL))
        if event.message_id in seen:
            return False
        seen.append(event.message_id)
        return True

    async def handle(self, portal: Portal, event_type: str, data: dict[str, Any]) -> None:
        event = parse_bot_event(event_type, data if isinstance(data, dict) else {})
        if event.kind == "other":
            log.debug("bot event %s ignored", event_type)
            return
        bot_id = event.bot_id or portal.bot_id
        if bot_id is None:
            log.warning("bot event %s on %s without a bot id", event_type, portal.domain)
            return
        if not self._first_time(portal.id, event):
            return
        if event.kind in ("message", "command") and event.user_id == bot_id:
            return  # our own message echoed back
        client = self.client_for(portal)
        ctx = BotContext(portal, client, event, self.deps, bot_id)
        try:
            await self.dispatcher.dispatch(ctx)
        except Exception:
            log.exception("bot handler failed on %s (%s)", portal.domain, event.kind)
            if event.kind in ("message", "command"):
                with contextlib.suppress(Exception):
                    await ctx.reply(SORRY)

    # --- fetch mode --------------------------------------------------------------------------
    async def poll_portal(self, portal: Portal) -> int:
        """Fetch and handle this portal's pending events; the offset is stored after each batch
        is handled, so a restart neither loses nor repeats events. Returns how many were handled."""
        if portal.bot_id is None:
            return 0
        client = self.client_for(portal)
        offset = portal.bot_event_offset
        handled = 0
        for _ in range(MAX_FETCH_ROUNDS):
            params: dict[str, Any] = {"botId": portal.bot_id, "limit": FETCH_LIMIT}
            if offset:
                params["offset"] = offset
            result = await client.call("imbot.v2.Event.get", params, idempotent=True)
            result = result if isinstance(result, dict) else {}
            events = [e for e in result.get("events") or [] if isinstance(e, dict)]
            await asyncio.gather(
                *(self.handle(portal, str(e.get("type") or ""), e.get("data") or {}) for e in events)
            )
            handled += len(events)
            next_offset = as_int(result.get("nextOffset"))
            if next_offset is None and events:
                next_offset = max(as_int(e.get("eventId")) or 0 for e in events) + 1
            if next_offset is not None and next_offset != offset:
                offset = next_offset
                await self.deps.store.portals.set_fields(portal.id, bot_event_offset=offset)
            if not result.get("hasMore") or not events:
                break
        return handled

    async def poll_all(self) -> None:
        """The scheduled poll (fetch mode: no public URL)."""
        if self.deps.settings.public_base() or self._closed:
            return
        for portal in await self.deps.store.portals.installed():
            if portal.bot_id is None or portal.mode != "app":
                continue
            try:
                await self.poll_portal(portal)
            except B24Error as exc:
                log.warning("bot events of %s not fetched: %s", portal.domain, exc.code)

    # --- lifecycle ---------------------------------------------------------------------------
    async def drain(self) -> None:
        """Wait for the background work started so far (tests, graceful stop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
