"""Event delivery and output: forged events refused, fetch-mode offsets, LLM answers as BB-code,
long answers split, the manager's message after a call."""

from __future__ import annotations

import pytest

from callcoach.pipeline.models import Findings, Objection, Sentiment, SentimentScore, Topic
from tests.bot.conftest import BotHarness, _harness
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import texts

MANAGER = 7


@pytest.mark.parametrize("json_body", [False, True])
async def test_forged_bot_event_is_refused(bot_app: BotHarness, json_body: bool) -> None:
    portal = bot_app.portal
    data = {
        "bot": {"id": bot_app.bot_id, "code": "callcoach"},
        "message": {"id": 1, "chatId": 107, "authorId": MANAGER, "text": "/help"},
        "chat": {"id": 107, "dialogId": str(MANAGER), "type": "private"},
        "user": {"id": MANAGER, "name": "Иван Петров"},
    }
    answer = await portal.send_event(
        bot_app.url + "/b24/bot", "ONIMBOTV2MESSAGEADD", data, application_token="x" * 32, json_body=json_body
    )
    await bot_app.services.bot.drain()
    assert answer["status"] == 401
    assert portal.bot_messages == []


async def test_genuine_webhook_event_answers_at_once(bot_app: BotHarness) -> None:
    if bot_app.mode != "webhook":
        pytest.skip("webhook delivery only")
    delivery = await bot_app.portal.bot_user_says(bot_app.bot_id, MANAGER, "/help")
    assert delivery is not None and delivery["status"] == 200
    await bot_app.services.bot.drain()
    assert len(bot_app.portal.bot_messages) == 1


async def test_fetch_mode_keeps_its_offset(tmp_path, light_analyzer) -> None:
    async for h in _harness(tmp_path, light_analyzer, "fetch"):
        await h.portal.bot_user_says(h.bot_id, MANAGER, "/help")
        await h.portal.bot_user_says(h.bot_id, MANAGER, "/tips price")
        await h.settle()
        assert len(h.portal.bot_messages) == 2
        offset = (await h.portal_row()).bot_event_offset
        assert offset > 0
        # Polling again (as after a restart: the offset comes from the database) repeats nothing.
        await h.services.bot.poll_all()
        await h.services.bot.drain()
        assert len(h.portal.bot_messages) == 2
        await h.portal.bot_user_says(h.bot_id, MANAGER, "/help")
        await h.settle()
        assert len(h.portal.bot_messages) == 3
        assert (await h.portal_row()).bot_event_offset > offset


MARKDOWN = """## Как ответить

**Главное** — не спорьте о цене, а *покажите ценность*.

- Уточните бюджет
- Посчитайте экономию: `ROI`

Подробнее: [методичка](https://example.com/guide)"""


async def test_llm_markdown_arrives_as_bbcode(bot_app_llm: BotHarness, fake_llm: FakeOpenAI) -> None:
    fake_llm.answer = MARKDOWN
    await bot_app_llm.add_call("C-1", MANAGER, [("price", "Высокая цена", "Дорого", False)])
    [message] = await bot_app_llm.say(MANAGER, "Клиент сказал, что дорого. Как быть?")
    text = message["message"]
    assert "[b]Как ответить[/b]" in text
    assert "[b]Главное[/b]" in text and "[i]покажите ценность[/i]" in text
    assert "• Уточните бюджет" in text and "[code]ROI[/code]" in text
    assert "[url=https://example.com/guide]методичка[/url]" in text
    assert "**" not in text and "##" not in text and "](" not in text
    # grounded: the knowledge base and the asker's own calls went to the model
    prompt = str(fake_llm.requests[-1]["messages"])
    assert "Переведите разговор на ценность" in prompt and "C-1" in prompt
    assert any(a["dialogId"] == str(MANAGER) for a in bot_app_llm.portal.input_actions)  # typing shown


async def test_llm_sees_only_the_askers_calls(bot_app_llm: BotHarness, fake_llm: FakeOpenAI) -> None:
    await bot_app_llm.add_call("MINE-1", MANAGER, [("price", "Высокая цена", "Дорого", False)])
    await bot_app_llm.add_call("THEIRS-1", 8, [("no_time", "Нет сейчас времени", "Секретная фраза", False)])
    await bot_app_llm.say(MANAGER, "Что у меня было в последних звонках?")
    prompt = str(fake_llm.requests[-1]["messages"])
    assert "MINE-1" in prompt and "THEIRS-1" not in prompt and "Секретная фраза" not in prompt


async def test_long_llm_answer_is_split(bot_app_llm: BotHarness, fake_llm: FakeOpenAI) -> None:
    paragraph = "Совет: уточните, с чем клиент сравнивает цену, и посчитайте выгоду вместе с ним. " * 10
    fake_llm.answer = "\n\n".join(f"{n}. {paragraph}" for n in range(70))  # ≈ 57,000 characters
    assert len(fake_llm.answer) > 50_000
    messages = await bot_app_llm.say(MANAGER, "Расскажи всё про возражение о цене")
    assert len(messages) >= 3
    assert all(len(m["message"]) <= 20_000 for m in messages)
    assert sum(len(m["message"]) for m in messages) > 45_000
    assert messages[-1]["keyboard"] and all(m["keyboard"] is None for m in messages[:-1])


async def test_llm_failure_falls_back_to_recommendation(
    bot_app_llm: BotHarness, fake_llm: FakeOpenAI
) -> None:
    fake_llm.fail_status, fake_llm.fail_times = 400, 10
    answer = texts(await bot_app_llm.say(MANAGER, "Клиент говорит, что у них уже есть поставщик"))
    assert "Уже есть другой вариант" in answer


def _findings() -> Findings:
    return Findings(
        duration=60,
        objections=[
            Objection(
                category="price",
                category_name="Высокая цена",
                quote="Дорого",
                start=5,
                confidence=0.9,
                recommendation="Покажите ценность",
            )
        ],
        sentiment=Sentiment(overall=SentimentScore(label="neutral", score=0.6)),
        topic=Topic(label="sales", score=0.6),
    )


async def test_notify_manager_through_the_bot(bot_app: BotHarness) -> None:
    notify = bot_app.services.notify
    job_id = await bot_app.add_call("N-1", MANAGER, [])
    job = await bot_app.services.store.jobs.get(job_id)
    row = await bot_app.portal_row()
    client = bot_app.services.clients.for_portal(row)
    await notify(row, client, job, _findings(), "https://example.com/call/1")
    [message] = bot_app.portal.bot_messages
    assert message["dialogId"] == str(MANAGER)
    assert "Высокая цена" in message["message"] and "Покажите ценность" in message["message"]
    assert "[url=https://example.com/call/1]" in message["message"]
    assert bot_app.portal.notifications == []


async def test_notify_manager_without_bot_uses_system_notification(bot_app: BotHarness) -> None:
    row = await bot_app.portal_row()
    await bot_app.services.store.portals.set_fields(row.id, bot_id=None)
    row = await bot_app.portal_row()
    job = await bot_app.services.store.jobs.get(await bot_app.add_call("N-2", MANAGER, []))
    client = bot_app.services.clients.for_portal(row)
    await bot_app.services.notify(row, client, job, _findings(), None)
    assert bot_app.portal.bot_messages == []
    [note] = bot_app.portal.notifications
    assert note["USER_ID"] == MANAGER and "Высокая цена" in note["MESSAGE"]


async def test_event_from_an_unknown_portal_is_refused(bot_app: BotHarness) -> None:
    from tests.fakes.portal import FakePortal

    async with FakePortal() as stranger:
        answer = await stranger.send_event(
            bot_app.url + "/b24/bot", "ONIMBOTV2MESSAGEADD", {"message": {"text": "/help"}}
        )
    await bot_app.services.bot.drain()
    assert answer["status"] == 401 and bot_app.portal.bot_messages == []
