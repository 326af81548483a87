"""What a handler gets: the event, the portal and its client, the shared dependencies, and
helpers to answer in the same dialog."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from callcoach.b24.client import B24Client
from callcoach.bot import sender
from callcoach.bot.events import BotEvent
from callcoach.config import Settings
from callcoach.pipeline.categories import merge_categories
from callcoach.pipeline.models import Category
from callcoach.rights import Access, Directory, OrgChart
from callcoach.storage import Store
from callcoach.storage.portals import Portal


@dataclass
class BotDeps:
    settings: Settings
    store: Store
    directory: Directory
    analyzer: Any = None  # has classify_text(text, categories) -> list[(Category, float)]
    llm: Any = None  # callcoach.llm.base.LLMBackend or None


@dataclass
class BotContext:
    portal: Portal
    client: B24Client
    event: BotEvent
    deps: BotDeps
    bot_id: int
    sent: list[int] = field(default_factory=list)
    _access: Access | None = None

    async def reply(self, text: str, keyboard: dict[str, Any] | None = None) -> None:
        self.sent += await sender.send_text(
            self.client, self.bot_id, self.event.dialog_id, text, keyboard=keyboard
        )

    async def typing(self) -> None:
        await sender.typing(self.client, self.bot_id, self.event.dialog_id)

    async def chart(self) -> OrgChart:
        return await self.deps.directory.chart(self.portal.id, self.client)

    async def access(self) -> Access:
        if self._access is None:
            self._access = await self.deps.directory.access(self.portal.id, self.client, self.event.user_id)
        return self._access

    async def categories(self) -> list[Category]:
        """Standard + the portal's custom categories: the same list the pipeline classifies with."""
        return merge_categories(await self.deps.store.categories.custom(self.portal.id))

    async def classify(self, text: str, categories: Sequence[Category]) -> list[tuple[Category, float]]:
        """Rank categories for ``text`` with the pipeline's classifier (off the event loop)."""
        from callcoach.bot.knowledge import classify

        analyzer = self.deps.analyzer
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, classify, analyzer, text, list(categories))
