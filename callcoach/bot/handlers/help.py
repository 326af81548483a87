"""/help, the welcome on joining a chat, and unknown commands."""

from __future__ import annotations

from callcoach.bot.context import BotContext
from callcoach.bot.keyboards import main_menu
from callcoach.bot.router import BotCommand, Router, is_kind

HELP = BotCommand(
    "help",
    "Что умеет бот",
    help="[send=/help]/help[/send] — эта справка",
    hint="[send=/help]/help[/send]",
    aliases=("помощь", "справка", "start"),
)
HELP_HEAD = """[b]Я — callcoach, помощник по звонкам.[/b]
Я слушаю звонки, нахожу возражения клиентов и подсказываю, как на них отвечать.

[b]Команды:[/b]"""
HELP_FOOT = (
    "Можно просто написать вопрос — например, «клиент говорит, что у него уже есть поставщик, что ответить?»"
)
WELCOME_HEAD = (
    "Здравствуйте! После каждого звонка я пришлю короткий разбор: какие возражения были и как на "
    "них лучше ответить.\n\n"
)


def help_text() -> str:
    from callcoach.bot.handlers import commands

    return "\n".join([HELP_HEAD, *(c.help for c in commands()), "", HELP_FOOT])


async def show_help(ctx: BotContext) -> None:
    await ctx.reply(help_text(), main_menu())


async def welcome(ctx: BotContext) -> None:
    await ctx.reply(WELCOME_HEAD + help_text(), main_menu())


def router() -> Router:
    r = Router("help", priority=10)
    r.command(HELP)(show_help)
    r.on(is_kind("join"))(welcome)
    return r
