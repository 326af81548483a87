"""/help, the welcome on joining a chat, and unknown commands."""

from __future__ import annotations

from callcoach.bot.context import BotContext
from callcoach.bot.keyboards import main_menu
from callcoach.bot.router import Router, is_kind

HELP_TEXT = """[b]Я — callcoach, помощник по звонкам.[/b]
Я слушаю звонки, нахожу возражения клиентов и подсказываю, как на них отвечать.

[b]Команды:[/b]
[send=/help]/help[/send] — эта справка
/tips <категория или слова клиента> — как ответить на возражение,
  например [send=/tips дорого]/tips дорого[/send]
/stats [сегодня|неделя|месяц] [@менеджер] — статистика звонков, например [send=/stats week]/stats week[/send]
/call <ID звонка или номер сделки> — разбор звонка
[send=/categories]/categories[/send] — категории возражений; add, export, import, предложения новых категорий
  /categories add Название | рекомендация | пример1; пример2
  /categories export · /categories import [JSON]

Можно просто написать вопрос — например, «клиент говорит, что у него уже есть поставщик, что ответить?»"""

WELCOME = (
    "Здравствуйте! После каждого звонка я пришлю короткий разбор: какие возражения были и как на "
    "них лучше ответить.\n\n" + HELP_TEXT
)


async def show_help(ctx: BotContext) -> None:
    await ctx.reply(HELP_TEXT, main_menu())


async def welcome(ctx: BotContext) -> None:
    await ctx.reply(WELCOME, main_menu())


def router() -> Router:
    r = Router("help")
    r.command("help", "помощь", "справка", "start")(show_help)
    r.on(is_kind("join"))(welcome)
    return r
