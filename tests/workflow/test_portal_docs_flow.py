"""The call flow on a portal that behaves as its REST docs say: a download answered with a page
is never analysed (general-principles.md), and what the flow posts is BB-code even when an LLM
wrote it in Markdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.portal import NGINX_404, FakePortal
from tests.helpers import StartApp, markdown_in, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


async def _job(app, portal: FakePortal, call_id: str):  # type: ignore[no-untyped-def]
    row = await app.services.store.portals.by_member(portal.member_id)
    return await app.services.store.jobs.by_call(row.id, call_id)


async def test_a_page_instead_of_the_recording_is_never_analysed(
    portal: FakePortal, start_app: StartApp
) -> None:
    app = await start_app(portal, job_max_attempts=1)
    assert (await portal.install(app.install_url))["status"] == 200
    portal.add_deal(71)
    portal.add_call(
        "nginx",
        recording=NGINX_404.encode(),
        user_id=1,
        duration=40,
        crm_activity_id=9710,
        bindings=[(2, 71)],
    )
    await portal.send_bound_event("ONVOXIMPLANTCALLEND", portal.call_end_event_data("nginx"))

    async def finished() -> bool:
        job = await _job(app, portal, "nginx")
        return job is not None and job.terminal

    await wait_for(finished, timeout=120)
    job = await _job(app, portal, "nginx")
    assert job.state == "failed" and "page or text" in (job.reason or ""), job.reason
    assert job.findings is None and portal.comments == []
    assert portal.refused_downloads == []  # the app sent the headers the docs ask for
    assert not any(Path(p).exists() for p in [job.audio_path or "/nonexistent"])


async def test_an_llm_summary_in_markdown_is_posted_as_bbcode(
    portal: FakePortal, start_app: StartApp, calls_dir: Path, llm: FakeOpenAI
) -> None:
    llm.answer = "**Совет:** клиент сомневается в цене.\n\n## Итог\n- перезвонить в пятницу"
    app = await start_app(
        portal, llm="openai", openai_base_url=llm.base_url, openai_model=llm.model, llm_timeout_s=10
    )
    assert (await portal.install(app.install_url))["status"] == 200
    portal.add_user(7, "Андрей", [1])
    portal.add_deal(72)
    portal.add_call(
        "md",
        recording=calls_dir / "dev01.stereo.mp3",
        user_id=7,
        duration=40,
        crm_activity_id=9720,
        bindings=[(2, 72)],
    )
    await portal.send_bound_event("ONVOXIMPLANTCALLEND", portal.call_end_event_data("md"))

    async def finished() -> bool:
        job = await _job(app, portal, "md")
        return job is not None and job.terminal

    await wait_for(finished, timeout=300)
    job = await _job(app, portal, "md")
    assert job.state == "done", job.reason
    assert llm.requests, "the LLM summary was not asked for"
    [comment] = portal.comments
    assert "[b]Совет:[/b]" in comment["COMMENT"]
    posted = [comment["COMMENT"]] + [m["message"] for m in portal.bot_messages]
    posted += [str(n["MESSAGE"]) for n in portal.notifications]
    for text in posted:
        assert not markdown_in(text), text
