"""What tests share besides fixtures: starting the app's settings, a data dir sharing the
session's models, a counting stand-in encoder, a free port, a stand-in analyzer, a portal
installed in the database, an analysed call in the database, waiting for a condition, the texts
of bot messages."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web

from callcoach.config import Settings
from callcoach.context import SERVICES, Services
from callcoach.pipeline.embeddings import _Memo
from callcoach.pipeline.models import Findings, Objection, Sentiment, SentimentScore, Topic
from callcoach.storage import Portal, Store
from tests.fakes.portal import FakePortal

REPO = Path(__file__).resolve().parents[1]


def data_dir_with_shared_models(data: Path, models: Path) -> Path:
    """``data`` (created) with the session's ``models/`` linked in: the bundled Whisper is joined
    and the text models are fitted once per test session (a cold fit is minutes on two cores),
    while each user keeps its own database and transcript cache. The app caches fits on disk the
    same way, keyed by the reference lines and encoders."""
    data.mkdir(parents=True, exist_ok=True)
    (models / "models").mkdir(parents=True, exist_ok=True)
    if not (data / "models").exists():
        (data / "models").symlink_to(models / "models", target_is_directory=True)
    return data


class CountingEncoder(_Memo):
    """A stand-in sentence encoder that records every text it was asked to embed (through the
    real encoders' memo), for tests of what gets embedded and when."""

    name = "counting"
    dim = 2

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[str] = []

    def _raw(self, texts: list[str]) -> np.ndarray:
        self.embedded += texts
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
        allow_private_portals=True,  # the fake portal is on 127.0.0.1
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


async def install_portal(store: Store, member: str = "m-1") -> Portal:
    """A portal's install row as the install handler writes it (tokens valid for an hour)."""
    return await store.portals.upsert_install(
        member_id=member,
        domain=f"{member}.bitrix24.ru",
        client_endpoint=f"https://{member}.bitrix24.ru/rest/",
        server_endpoint="https://oauth.bitrix.info/rest/",
        access_token="access",
        refresh_token="refresh",
        expires_at=time.time() + 3600,
        application_token="app-token",
        scope="crm,telephony",
    )


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


def texts(messages: list[dict[str, Any]]) -> str:
    """The bot's messages, as one text."""
    return "\n".join(m["message"] for m in messages)


def make_settings(**values: Any) -> Settings:
    """Settings from these values only (no .env file)."""
    return Settings(_env_file=None, **values)


_MARKDOWN = re.compile(r"\*\*|__|^#+ |\]\(", re.M)
# A link's address is not text: a signed call link's urlsafe-base64 signature holds "__" in about
# one link of a hundred (which failed the webhook case of a test now and then).
_URL_TARGET = re.compile(r"\[url=[^\]]*\]")


def markdown_in(text: str) -> bool:
    """Whether Markdown (bold, a heading, a link) is left in text meant for Bitrix24's BB-code."""
    return bool(_MARKDOWN.search(_URL_TARGET.sub("[url]", text)))
