"""The real app installed into the fake portal, with the chat bot in webhook or fetch mode.

``bot_app`` (parametrised: webhook and fetch) starts ``callcoach.app.create_app`` on a real port,
installs it into a ``FakePortal`` (ONAPPINSTALL → tokens, events, bot registration) and gives a
``BotHarness`` to talk to the bot as a portal user would. Whisper is never loaded: the app gets a
light analyzer whose ``classify_text`` is the pipeline's real text classifier (TextAnalyzer with
the e5 embedder only), built once per test session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from callcoach.app import create_app
from callcoach.config import Settings
from callcoach.context import SERVICES, Services
from callcoach.pipeline.models import Category, Findings
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.portal import FakePortal
from tests.helpers import add_analysed_call, data_dir_with_shared_models, free_port


class LightAnalyzer:
    """The pipeline's text classifier without Whisper: enough for the bot (and cheap to share)."""

    def __init__(self, data_dir: Path) -> None:
        from callcoach.pipeline.text_analysis import TextAnalyzer

        # the production encoders (USE + e5): the objection model is fitted on both
        self.text = TextAnalyzer(Settings(data_dir=data_dir, _env_file=None))  # type: ignore[call-arg]
        self.embedder = self.text.embedders[0]

    def load(self) -> None:
        pass

    def state(self) -> dict[str, Any]:
        return {"whisper": {"loaded": False}, "text_loaded": True}

    def classify_text(self, text: str, categories: Any = None) -> list[tuple[Category, float]]:
        return self.text.classify_text(text, categories)

    def analyze_file(self, *args: Any, **kwargs: Any) -> Findings:
        raise RuntimeError("the bot tests analyse no audio")


@pytest.fixture(scope="session")
def light_analyzer(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[LightAnalyzer]:
    yield LightAnalyzer(data_dir_with_shared_models(tmp_path_factory.mktemp("bot-text"), models_dir))


@dataclass
class BotHarness:
    portal: FakePortal
    services: Services
    url: str
    mode: str

    @property
    def bot_id(self) -> int:
        return next(iter(self.portal.bots))

    async def settle(self) -> None:
        """Let the bot finish: fetch mode polls (what the scheduler does), webhook mode drains."""
        if self.mode == "fetch":
            await self.services.bot.poll_all()
        await self.services.bot.drain()

    async def say(self, user_id: int, text: str) -> list[dict[str, Any]]:
        before = len(self.portal.bot_messages)
        await self.portal.bot_user_says(self.bot_id, user_id, text)
        await self.settle()
        return self.portal.bot_messages[before:]

    async def press(self, user_id: int, command: str, params: str = "") -> list[dict[str, Any]]:
        """A command event (picked from the menu or pressed on a keyboard button)."""
        before = len(self.portal.bot_messages)
        await self.portal.bot_command(self.bot_id, user_id, command, params)
        await self.settle()
        return self.portal.bot_messages[before:]

    async def portal_row(self) -> Any:
        return await self.services.store.portals.by_member(self.portal.member_id)

    async def add_call(
        self,
        call_id: str,
        manager_id: int,
        objections: list[tuple[str, str, str, bool]],
        *,
        deal_id: int | None = None,
        sentiment: str = "neutral",
        age_s: float = 3600,
    ) -> int:
        """An analysed call in the store: objections as (code, name, quote, handled)."""
        return await add_analysed_call(
            self.services.store,
            self.portal,
            call_id,
            manager_id,
            objections=objections,
            deal_id=deal_id,
            sentiment=sentiment,
            age_s=age_s,
        )


def org_chart(portal: FakePortal) -> None:
    """Sales department (head 5: Анна Руководитель) with managers 7 and 8; support with 9."""
    portal.add_department(10, "Продажи", head_user_id=5, parent=1)
    portal.add_department(20, "Поддержка", head_user_id=None, parent=1)
    portal.add_user(5, "Анна Руководитель", [10])
    portal.add_user(7, "Иван Петров", [10])
    portal.add_user(8, "Пётр Сидоров", [10])
    portal.add_user(9, "Ольга Смирнова", [20])


async def start_app(
    portal: FakePortal, tmp_path: Path, light_analyzer: LightAnalyzer, mode: str, **settings: Any
) -> tuple[web.AppRunner, Services, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = Settings(
        _env_file=None,
        data_dir=tmp_path,
        public_url=url if mode == "webhook" else None,
        client_id=portal.client_id,
        client_secret=portal.client_secret,
        oauth_url=portal.oauth_url,
        allow_private_portals=True,  # the fake portal is on 127.0.0.1
        sweep_minutes=0,
        bot_poll_seconds=3600,
        **settings,
    )
    app = create_app(config, analyzer=light_analyzer, start_worker=False)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, app[SERVICES], url


async def _harness(
    tmp_path: Path, light_analyzer: LightAnalyzer, mode: str, **settings: Any
) -> AsyncIterator[BotHarness]:
    async with FakePortal() as portal:
        org_chart(portal)
        runner, services, url = await start_app(portal, tmp_path, light_analyzer, mode, **settings)
        try:
            answer = await portal.install(url + "/b24/install")
            assert answer["status"] == 200, answer
            yield BotHarness(portal, services, url, mode)
        finally:
            await runner.cleanup()


@pytest.fixture(params=["webhook", "fetch"])
async def bot_app(
    request: pytest.FixtureRequest, tmp_path: Path, light_analyzer: LightAnalyzer
) -> AsyncIterator[BotHarness]:
    async for harness in _harness(tmp_path, light_analyzer, request.param):
        yield harness


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture(params=["webhook", "fetch"])
async def bot_app_llm(
    request: pytest.FixtureRequest, tmp_path: Path, light_analyzer: LightAnalyzer, fake_llm: FakeOpenAI
) -> AsyncIterator[BotHarness]:
    async for harness in _harness(
        tmp_path,
        light_analyzer,
        request.param,
        llm="openai",
        openai_base_url=fake_llm.base_url,
        openai_model=fake_llm.model,
        llm_timeout_s=10,
    ):
        yield harness
