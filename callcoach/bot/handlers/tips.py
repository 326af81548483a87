"""/tips <category or what the client said>: how to answer."""

from __future__ import annotations

from callcoach.bot.context import BotContext
from callcoach.bot.keyboards import command_button, keyboard
from callcoach.bot.knowledge import find_category, render_tip
from callcoach.bot.router import BotCommand, Router
from callcoach.texts import bb_escape

TIPS = BotCommand(
    "tips",
    "Как ответить на возражение",
    params="категория или слова клиента",
    help="/tips <категория или слова клиента> — как ответить на возражение,\n"
    "  например [send=/tips дорого]/tips дорого[/send]",
    hint="/tips <слова клиента>",
    aliases=("tip", "совет", "советы"),
)

MIN_CONFIDENCE = 0.35  # below this the best match is shown as a guess, with the runners-up


async def tips(ctx: BotContext) -> None:
    query = ctx.event.params.strip()
    categories = await ctx.categories()
    if not query:
        lines = ["[b]Категории возражений[/b] — напишите /tips и название или слова клиента:"]
        lines += [f"• [send=/tips {c.code}]{bb_escape(c.name)}[/send]" for c in categories]
        await ctx.reply("\n".join(lines))
        return
    named = find_category(query, categories)
    if named is not None:
        await ctx.reply(render_tip(named))
        return
    ranked = await ctx.classify(query, categories)
    if not ranked:
        await ctx.reply("Не нашёл подходящей категории. Список: [send=/tips]/tips[/send]")
        return
    best, confidence = ranked[0]
    text = render_tip(best, confidence=confidence)
    if confidence < MIN_CONFIDENCE or (len(ranked) > 1 and ranked[1][1] > confidence - 0.05):
        others = ", ".join(f"[send=/tips {c.code}]{bb_escape(c.name)}[/send]" for c, _ in ranked[1:3])
        text += f"\n\nЕсли это не то, посмотрите: {others}"
    buttons = [command_button(c.name[:30], "tips", c.code) for c, _ in ranked[1:3]]
    await ctx.reply(f"Клиент: «{bb_escape(query)}»\n\n{text}", keyboard(buttons) if buttons else None)


def router() -> Router:
    r = Router("tips", priority=20)
    r.command(TIPS)(tips)
    return r
