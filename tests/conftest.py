"""Shared fixtures: the shared call recordings, one real analyzer per test session, the fake
portal, and the real app on a real port."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from callcoach.app import create_app
from callcoach.config import Settings
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.portal import FakePortal
from tests.helpers import NoSpeechAnalyzer, RunningApp, StartApp, app_settings, free_port

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return Path(os.environ.get("CALLCOACH_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def calls_dir() -> Path:
    path = shared_dir() / "calls"
    if not path.is_dir():
        pytest.skip(f"no shared calls at {path}")
    return path


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data dir for model files across the session (the bundled Whisper is joined once)."""
    return Path(os.environ.get("CALLCOACH_TEST_DATA_DIR") or tmp_path_factory.mktemp("models-data"))


@pytest.fixture(scope="session")
def analyzer(models_dir: Path) -> Any:
    """The real analyzer (bundled Whisper base, offline classifiers), loaded once per session."""
    from callcoach.pipeline.analyzer import Analyzer

    instance = Analyzer(Settings(data_dir=models_dir, _env_file=None))  # type: ignore[call-arg]
    instance.load()
    # The objection model for the standard categories is fitted on its first use: minutes on two
    # cores while the reference lines are embedded for the first time in a fresh data dir. Fitted
    # here, once, so that a test's time limit measures its own call's flow and not whichever test
    # happened to come first (a cold fit had pushed one past its 300 s limit).
    instance.classify_text("для нас это дорого")
    return instance


@pytest.fixture
async def portal() -> AsyncIterator[FakePortal]:
    async with FakePortal() as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def _app_starter(
    tmp_path: Path, default_analyzer: Callable[[], Any], *, start_worker: bool
) -> AsyncIterator[StartApp]:
    started: list[RunningApp] = []

    async def start(
        portal: FakePortal | None = None,
        *,
        data_dir: Path | None = None,
        analyzer: Any = None,
        **overrides: Any,
    ) -> RunningApp:
        port = free_port()
        data = data_dir or tmp_path / "data"
        data.mkdir(parents=True, exist_ok=True)
        settings = app_settings(portal, data, port, **overrides)
        app = create_app(settings, analyzer=analyzer or default_analyzer(), start_worker=start_worker)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        running = RunningApp(f"http://127.0.0.1:{port}", runner, settings)
        started.append(running)
        return running

    yield start
    for running in started:
        await running.close()


@pytest.fixture
async def start_app(tmp_path: Path, analyzer: Any) -> AsyncIterator[StartApp]:
    """Start the real app on a real port; ``await start_app(portal, **settings)``."""
    async for start in _app_starter(tmp_path, lambda: analyzer, start_worker=True):
        yield start


@pytest.fixture
async def start_light_app(tmp_path: Path) -> AsyncIterator[StartApp]:
    """Like ``start_app`` with a ``NoSpeechAnalyzer`` (or ``analyzer=``) and no worker: the real
    app on a real port without the speech model. ``await start_light_app(portal, **settings)``."""
    async for start in _app_starter(tmp_path, NoSpeechAnalyzer, start_worker=False):
        yield start


@pytest.fixture
async def fake_gemini() -> AsyncIterator[FakeGemini]:
    async with FakeGemini() as fake:
        yield fake


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake
