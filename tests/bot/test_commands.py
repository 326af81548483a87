"""The chat bot through the fake portal, in webhook and in fetch mode: every command as a user
would use it, the rights rule both ways, proposals accepted from a keyboard button."""

from __future__ import annotations

import json

from callcoach.pipeline.categories import merge_categories
from tests.bot.conftest import BotHarness
from tests.helpers import texts

MANAGER, OTHER, HEAD, SUPPORT, ADMIN = 7, 8, 5, 9, 1


async def test_install_registers_bot_and_commands(bot_app: BotHarness) -> None:
    bot = bot_app.portal.bots[bot_app.bot_id]
    assert bot.code == "callcoach"
    assert bot.fields["properties"]["workPosition"]
    if bot_app.mode == "webhook":
        assert bot.event_mode == "webhook" and bot.webhook_url == bot_app.url + "/b24/bot"
    else:
        assert bot.event_mode == "fetch"
    assert {"help", "tips", "stats", "call", "categories"} <= set(bot.commands)
    assert (await bot_app.portal_row()).bot_id == bot_app.bot_id


async def test_help_typed_and_from_menu(bot_app: BotHarness) -> None:
    typed = await bot_app.say(MANAGER, "/help")
    assert len(typed) == 1 and typed[0]["dialogId"] == str(MANAGER)
    assert "/tips" in typed[0]["message"] and "/stats" in typed[0]["message"]
    assert typed[0]["keyboard"]["BUTTONS"]
    menu = await bot_app.press(MANAGER, "help")
    assert "/categories" in texts(menu)


async def test_join_says_what_it_can_do(bot_app: BotHarness) -> None:
    before = len(bot_app.portal.bot_messages)
    await bot_app.portal.bot_join(bot_app.bot_id, MANAGER)
    await bot_app.settle()
    welcome = texts(bot_app.portal.bot_messages[before:])
    assert "Здравствуйте" in welcome and "/stats" in welcome


async def test_tips_by_category_and_by_client_words(bot_app: BotHarness) -> None:
    by_code = texts(await bot_app.say(MANAGER, "/tips price"))
    assert "Высокая цена" in by_code and "Переведите разговор на ценность" in by_code
    by_words = texts(
        await bot_app.press(MANAGER, "tips", "мы давно работаем с другим поставщиком и довольны")
    )
    assert by_words.split("\n\n")[1].startswith("[b]Уже есть другой вариант[/b]")
    listing = texts(await bot_app.say(MANAGER, "/tips"))
    assert "Сравнивает с конкурентами" in listing


async def test_tips_uses_the_portals_custom_categories(bot_app: BotHarness) -> None:
    await bot_app.say(
        ADMIN,
        "/categories add Нет лицензии ФСБ | Покажите сертификаты и лицензии | "
        "У вас нет лицензии ФСБ; Без сертификата ФСТЭК не купим; Нужна лицензия регулятора",
    )
    answer = texts(await bot_app.say(MANAGER, "/tips без сертификата ФСТЭК мы не сможем купить"))
    assert "Нет лицензии ФСБ" in answer.split("\n\n")[1]


async def test_stats_own_calls(bot_app: BotHarness) -> None:
    await bot_app.add_call("C-1", MANAGER, [("price", "Высокая цена", "Дорого", True)], sentiment="negative")
    await bot_app.add_call("C-2", MANAGER, [("price", "Высокая цена", "Очень дорого", False)])
    await bot_app.add_call("C-3", OTHER, [("no_time", "Нет сейчас времени", "Некогда", False)])
    own = texts(await bot_app.say(MANAGER, "/stats неделя"))
    assert "проанализировано: [b]2[/b]" in own
    assert "Высокая цена: 2" in own and "отработано: [b]50%[/b]" in own
    assert "Нет сейчас времени" not in own  # another manager's objection does not leak
    assert "негативный 50%" in own


async def test_stats_periods(bot_app: BotHarness) -> None:
    await bot_app.add_call("C-old", MANAGER, [("price", "Высокая цена", "Дорого", True)], age_s=20 * 86400)
    await bot_app.add_call("C-new", MANAGER, [("price", "Высокая цена", "Дорого", True)], age_s=60)
    assert "проанализировано: [b]1[/b]" in texts(await bot_app.press(MANAGER, "stats", "week"))
    assert "проанализировано: [b]2[/b]" in texts(await bot_app.say(MANAGER, "/stats месяц"))
    assert "проанализировано: [b]1[/b]" in texts(await bot_app.say(MANAGER, "/stats сегодня"))


async def test_stats_rights(bot_app: BotHarness) -> None:
    await bot_app.add_call("C-7", MANAGER, [("price", "Высокая цена", "Дорого", True)])
    await bot_app.add_call("C-8", OTHER, [("no_time", "Нет сейчас времени", "Некогда", False)])
    await bot_app.add_call("C-9", SUPPORT, [("quality", "Недостаточное качество", "Глючит", False)])
    denied = texts(await bot_app.say(MANAGER, "/stats week @Пётр"))
    assert "только руководителю" in denied and "Некогда" not in denied and "Нет сейчас времени" not in denied
    head = texts(await bot_app.say(HEAD, "/stats week @Пётр"))
    assert "Пётр Сидоров" in head and "Нет сейчас времени: 1" in head
    team = texts(await bot_app.say(HEAD, "/stats"))
    assert "Иван Петров" in team and "Пётр Сидоров" in team
    assert "Ольга" not in team and "Недостаточное качество" not in team  # not her department
    assert "только руководителю" in texts(await bot_app.say(HEAD, "/stats @Ольга"))
    admin = texts(await bot_app.say(ADMIN, "/stats"))
    assert "Ольга Смирнова" in admin and "проанализировано: [b]3[/b]" in admin


async def test_call_findings_and_rights(bot_app: BotHarness) -> None:
    await bot_app.add_call("CALL-7", MANAGER, [("price", "Высокая цена", "Это дорого", False)], deal_id=42)
    own = texts(await bot_app.say(MANAGER, "/call CALL-7"))
    assert "Звонок CALL-7" in own and "«Это дорого»" in own and "Совет для Высокая цена" in own
    assert "Звонок CALL-7" in texts(await bot_app.press(MANAGER, "call", "42"))  # by deal id
    foreign = texts(await bot_app.say(OTHER, "/call CALL-7"))
    assert "не найден или у вас нет к нему доступа" in foreign and "дорого" not in foreign
    assert "не найден" in texts(await bot_app.say(OTHER, "/call 42"))
    assert "«Это дорого»" in texts(await bot_app.say(HEAD, "/call CALL-7"))
    assert "«Это дорого»" in texts(await bot_app.say(ADMIN, "/call CALL-7"))
    assert "не найден или у вас нет к нему доступа" in texts(await bot_app.say(MANAGER, "/call NOPE"))


async def test_proposal_accepted_from_keyboard_becomes_a_category(bot_app: BotHarness) -> None:
    from callcoach.pipeline.models import ProposedCategory

    row = await bot_app.portal_row()
    store = bot_app.services.store
    quotes = ["Нам нужен сертификат ISO", "Без сертификата ISO не купим", "Есть ли у вас ISO 9001?"]
    await store.categories.add_candidates(row.id, None, quotes)

    async def group(qs: list[str]) -> list[ProposedCategory]:
        return [ProposedCategory(name="Сертификат ISO", code="iso_cert", examples=qs, size=len(qs))]

    await store.categories.regroup(row.id, group)
    listing = await bot_app.say(HEAD, "/categories")
    assert "Сертификат ISO" in texts(listing)
    buttons = listing[-1]["keyboard"]["BUTTONS"]
    accept = next(b for b in buttons if b.get("COMMAND_PARAMS", "").startswith("accept"))
    assert accept["COMMAND"] == "categories"

    refused = await bot_app.press(MANAGER, accept["COMMAND"], accept["COMMAND_PARAMS"])
    assert "Менять категории могут" in texts(refused)
    assert not [c for c in await store.categories.custom(row.id) if c.code == "iso_cert"]

    done = await bot_app.press(HEAD, accept["COMMAND"], accept["COMMAND_PARAMS"])
    assert "принята" in texts(done)
    custom = await store.categories.custom(row.id)
    assert [c.code for c in custom] == ["iso_cert"]
    merged = merge_categories(custom)  # what the call flow classifies the next call with
    assert "iso_cert" in {c.code for c in merged}
    analyzer = bot_app.services.analyzer
    assert analyzer is not None
    ranked = analyzer.classify_text("у вас есть сертификат ISO?", merged)
    assert ranked[0][0].code == "iso_cert"
    again = await bot_app.press(HEAD, accept["COMMAND"], accept["COMMAND_PARAMS"])
    assert "уже рассмотрено" in texts(again)


async def test_proposal_rejected(bot_app: BotHarness) -> None:
    from callcoach.pipeline.models import ProposedCategory

    row = await bot_app.portal_row()
    store = bot_app.services.store
    await store.categories.add_candidates(row.id, None, ["Погода плохая"])

    async def group(qs: list[str]) -> list[ProposedCategory]:
        return [ProposedCategory(name="Погода", code="weather", examples=qs, size=1)]

    [proposal] = await store.categories.regroup(row.id, group)
    assert "отклонено" in texts(await bot_app.press(ADMIN, "categories", f"reject {proposal.id}"))
    assert await store.categories.custom(row.id) == []
    assert await store.categories.proposals(row.id) == []


async def test_categories_add_export_import(bot_app: BotHarness) -> None:
    row = await bot_app.portal_row()
    store = bot_app.services.store
    added = texts(
        await bot_app.say(
            ADMIN, "/categories add Сезонность | Предложите предзаказ | Сейчас не сезон; Летом купим"
        )
    )
    assert "добавлена" in added
    [custom] = await store.categories.custom(row.id)
    assert custom.name == "Сезонность" and custom.examples == ["Сейчас не сезон", "Летом купим"]
    assert custom.recommendation == "Предложите предзаказ"
    assert "Нужна хотя бы одна фраза" in texts(await bot_app.say(ADMIN, "/categories add Пусто | совет"))
    assert "Менять категории могут" in texts(await bot_app.say(MANAGER, "/categories add X | y | z"))

    exported = texts(await bot_app.press(ADMIN, "categories", "export"))
    body = exported.split("[code]", 1)[1].split("[/code]", 1)[0]
    data = json.loads(body)
    assert data[0]["code"] == custom.code

    data.append({"code": "delivery_region", "name": "Регион доставки", "examples": ["Вы к нам не возите"]})
    imported = texts(await bot_app.say(ADMIN, "/categories import\n" + json.dumps(data, ensure_ascii=False)))
    assert "Загружено категорий: 2" in imported
    assert {c.code for c in await store.categories.custom(row.id)} == {custom.code, "delivery_region"}

    bad = texts(await bot_app.say(ADMIN, '/categories import [{"code": "Bad Code", "name": "x"}]'))
    assert "ничего не изменено" in bad and "code" in bad
    assert len(await store.categories.custom(row.id)) == 2
    listing = texts(await bot_app.say(MANAGER, "/categories"))
    assert "Регион доставки" in listing and "Высокая цена" in listing


async def test_free_text_without_llm_gives_best_recommendation(bot_app: BotHarness) -> None:
    answer = texts(await bot_app.say(MANAGER, "Клиент говорит: это слишком дорого для нас. Что ответить?"))
    assert "Высокая цена" in answer and "/tips" in answer and "/stats" in answer


async def test_unknown_command(bot_app: BotHarness) -> None:
    assert "Не знаю команду /foo" in texts(await bot_app.say(MANAGER, "/foo bar"))


async def test_bot_deleted_forgets_bot_id(bot_app: BotHarness) -> None:
    await bot_app.portal.bot_delete(bot_app.bot_id)
    await bot_app.settle()
    assert (await bot_app.portal_row()).bot_id is None
