"""Shared fixtures: the shared call recordings, one real analyzer per test session, the fake
portal, and the real app on a real port."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from callcoach.app import create_app
from callcoach.config import Settings
from callcoach.context import SERVICES, Services
from callcoach.pipeline.models import Findings, Objection, Sentiment, SentimentScore, Topic
from callcoach.storage import Store
from tests.fakes.portal import FakePortal

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
    return instance


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def portal() -> AsyncIterator[FakePortal]:
    async with FakePortal() as fake:
        yield fake


@dataclass
class RunningApp:
    url: str
    runner: web.AppRunner
    settings: Settings

    @property
    def services(self) -> Services:
        return self.runner.app[SERVICES]  # type: ignore[union-attr]

    @property
    def install_url(self) -> str:
        return self.url + "/b24/install"

    @property
    def events_url(self) -> str:
        return self.url + "/b24/events"

    async def close(self) -> None:
        await self.runner.cleanup()


def app_settings(portal: FakePortal | None, data_dir: Path, port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        public_url=f"http://127.0.0.1:{port}",
        host="127.0.0.1",
        port=port,
        data_dir=data_dir,
        sweep_minutes=0,
        record_retry_minutes=[0.01, 0.01, 0.01, 0.01],
        _env_file=None,
    )
    if portal is not None:
        # installs are verified with, and tokens renewed at, the fake's OAuth server
        values.update(
            client_id=portal.client_id, client_secret=portal.client_secret, oauth_url=portal.oauth_url
        )
    values.update(overrides)
    return Settings(**values)


StartApp = Callable[..., Awaitable[RunningApp]]


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


class NoSpeechAnalyzer:
    """An analyzer that loads no model, for tests of the app around the analysis (the dashboard,
    the report): ``propose`` stands in for the grouping of unmatched objections."""

    def __init__(self) -> None:
        self.propose: Callable[[list[str]], list[Any]] = lambda quotes: []

    def load(self) -> None:
        pass

    def state(self) -> dict[str, Any]:
        return {"whisper": {"loaded": False}, "text_loaded": False}

    def analyze_file(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("this test analyses no audio")

    def classify_text(self, text: str, categories: Any = None) -> list[Any]:
        return []

    def propose_categories(self, quotes: Any, *, existing_codes: Any = ()) -> list[Any]:
        return self.propose(list(quotes))


@pytest.fixture
async def start_light_app(tmp_path: Path) -> AsyncIterator[StartApp]:
    """Like ``start_app`` with a ``NoSpeechAnalyzer`` (or ``analyzer=``) and no worker: the real
    app on a real port without the speech model. ``await start_light_app(portal, **settings)``."""
    async for start in _app_starter(tmp_path, NoSpeechAnalyzer, start_worker=False):
        yield start


async def add_analysed_call(
    store: Store,
    portal: FakePortal,
    call_id: str,
    manager_id: int,
    quote: str = "",
    *,
    objections: list[tuple[str, str, str, bool]] | None = None,
    deal_id: int | None = None,
    sentiment: str = "neutral",
    age_s: float = 3600,
) -> int:
    """An analysed call in the store, as the call flow leaves it: one unhandled price objection
    saying ``quote``, or ``objections`` as (code, name, quote, handled)."""
    row = await store.portals.by_member(portal.member_id)
    assert row is not None
    await store.jobs.enqueue(row.id, call_id, {"PORTAL_USER_ID": str(manager_id), "CALL_DURATION": "120"})
    job = await store.jobs.by_call(row.id, call_id)
    assert job is not None
    if objections is None:
        objections = [("price", "Высокая цена", quote, False)]
    findings = Findings(
        duration=120,
        objections=[
            Objection(
                category=code,
                category_name=name,
                quote=text,
                start=10.0 * (n + 1),
                confidence=0.9,
                recommendation=f"Совет для {name}",
                handled=handled,
            )
            for n, (code, name, text, handled) in enumerate(objections)
        ],
        sentiment=Sentiment(overall=SentimentScore(label=sentiment, score=0.8)),
        topic=Topic(label="sales", score=0.7),
    )
    await store.jobs.save(
        job.id,
        state="done",
        findings=findings.model_dump(mode="json"),
        call_start=time.time() - age_s,
        entity_type="deal" if deal_id else None,
        entity_id=deal_id,
    )
    return job.id


async def wait_for(predicate: Callable[[], Any], timeout: float = 120.0, interval: float = 0.1) -> Any:  # noqa: ASYNC109
    """Poll until ``predicate()`` (sync or async) is truthy; fail with a clear message."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
