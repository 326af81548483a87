"""The bot on a portal as the REST docs describe it: a big company structure read page by page
(department-get.md), a bot re-registered with another URL (bot-register.md, bot-update.md), and
BB-code only in what it writes (chat-bots-v2 formatting)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from callcoach.pipeline.models import Findings, Objection, Sentiment, SentimentScore, Topic
from tests.bot.conftest import BotHarness, LightAnalyzer, _harness, start_app
from tests.bot.test_commands import HEAD, MANAGER, OTHER, texts
from tests.helpers import markdown_in


async def test_stats_on_a_portal_with_120_departments(bot_app: BotHarness) -> None:
    portal = bot_app.portal
    for n in range(100, 220):
        portal.add_department(n, f"Отдел {n}", parent=1)
    # the head's second department is on department.get's third page
    portal.add_department(219, "Отдел 219", head_user_id=HEAD, parent=1)
    portal.add_user(8, "Пётр Сидоров", [219])
    await bot_app.add_call("D-8", OTHER, [("no_time", "Нет сейчас времени", "Некогда", False)])
    async with asyncio.timeout(60):  # a guard against the old endless paging, not a measurement
        team = texts(await bot_app.say(HEAD, "/stats week @Пётр"))
    assert "Пётр Сидоров" in team and "Нет сейчас времени: 1" in team
    # 124 departments: three pages of 50, read once (then cached)
    assert portal.count("department.get") == 3
    assert all(
        "filter" not in params and "FILTER" not in params
        for m, params in portal.calls
        if m == "department.get"
    )
    async with asyncio.timeout(60):
        await bot_app.say(HEAD, "/stats")
    assert portal.count("department.get") == 3


async def test_a_new_webhook_url_is_given_to_the_existing_bot(
    tmp_path: Path, light_analyzer: LightAnalyzer
) -> None:
    async for h in _harness(tmp_path / "one", light_analyzer, "webhook"):
        bot = h.portal.bots[h.bot_id]
        assert bot.webhook_url == h.url + "/b24/bot"
        # the app moves to another address and is installed again
        runner, _, new_url = await start_app(h.portal, tmp_path / "two", light_analyzer, "webhook")
        try:
            assert (await h.portal.install(new_url + "/b24/install"))["status"] == 200
            assert len(h.portal.bots) == 1  # register returned the existing bot...
            assert h.portal.count("imbot.v2.bot.update") >= 1  # ...and update moved it
            assert bot.webhook_url == new_url + "/b24/bot" and bot.event_mode == "webhook"
            delivery = await h.portal.bot_user_says(h.bot_id, MANAGER, "/help")
            assert delivery is not None and delivery["url"] == new_url + "/b24/bot"
            assert delivery["status"] == 200
        finally:
            await runner.cleanup()


def _markdown_findings() -> Findings:
    return Findings(
        duration=90,
        summary="**Совет:** клиент сомневается в цене.\n\n## Итог\n- перезвонить в пятницу",
        objections=[
            Objection(
                category="price",
                category_name="Высокая цена",
                quote="Дорого",
                start=12.0,
                confidence=0.9,
                recommendation="**Покажите ценность**, а не _скидку_",
                handled=False,
            )
        ],
        sentiment=Sentiment(overall=SentimentScore(label="neutral", score=0.7)),
        topic=Topic(label="sales", score=0.6),
    )


async def test_markdown_never_reaches_a_message_or_a_comment(bot_app: BotHarness) -> None:
    from callcoach.texts import timeline_comment

    findings = _markdown_findings()
    comment = timeline_comment(findings, call_id="M-1", page_url=None)
    assert "[b]Совет:[/b]" in comment and "[b]Покажите ценность[/b]" in comment
    assert not markdown_in(comment), comment

    job_id = await bot_app.add_call("M-1", MANAGER, [])
    await bot_app.services.store.jobs.save(job_id, findings=findings.model_dump(mode="json"))
    job = await bot_app.services.store.jobs.get(job_id)
    row = await bot_app.portal_row()
    await bot_app.services.notify(row, bot_app.services.clients.for_portal(row), job, findings, None)
    answer = await bot_app.say(MANAGER, "/call M-1")
    for message in [*bot_app.portal.bot_messages, *bot_app.portal.notifications]:
        text = message.get("message") or message.get("MESSAGE") or ""
        assert not markdown_in(text), text
    assert "[b]Совет:[/b]" in texts(answer)
