"""Anything that is not a command: an answer from the LLM, grounded on the objection knowledge
base and the asker's own recent calls; without an LLM, the best matching recommendation."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from callcoach.bot.context import BotContext
from callcoach.bot.keyboards import main_menu
from callcoach.bot.knowledge import knowledge_base, recent_calls_digest, render_tip
from callcoach.bot.router import Router, is_kind
from callcoach.llm.base import LLMError, LLMRequest
from callcoach.texts import bb_escape, markdown_to_bbcode

log = logging.getLogger(__name__)

TYPING_EVERY_S = 4.0  # the messenger hides the indicator after a few seconds
MAX_QUESTION = 4000

SYSTEM = (
    "Ты — callcoach, наставник менеджеров по продажам в Bitrix24. Отвечай по-русски, кратко и по "
    "делу, с конкретными фразами, которые менеджер может сказать клиенту. Опирайся на базу "
    "возражений ниже и на последние звонки этого менеджера. Не выдумывай факты о звонках, которых "
    "нет в данных."
    """

База возражений (категория, примеры, как отвечать):
{kb}

Последние звонки менеджера:
{calls}"""
)


def commands_hint() -> str:
    from callcoach.bot.handlers import commands

    return "Команды: " + ", ".join(c.hint for c in commands())


async def _keep_typing(ctx: BotContext) -> None:
    while True:
        await ctx.typing()
        await asyncio.sleep(TYPING_EVERY_S)


async def free_text(ctx: BotContext) -> None:
    question = ctx.event.text.strip()[:MAX_QUESTION]
    if not question:
        return  # a file or a sticker without text: nothing to answer
    categories = await ctx.categories()
    llm = ctx.deps.llm
    if llm is not None:
        own = await ctx.deps.store.jobs.list_jobs(
            ctx.portal.id, manager_ids=[ctx.event.user_id], states=("done",), limit=5
        )
        system = SYSTEM.format(kb=knowledge_base(categories), calls=recent_calls_digest(own) or "нет данных")
        typing = asyncio.create_task(_keep_typing(ctx))
        try:
            answer = await llm.complete(LLMRequest.ask(question, system=system))
        except LLMError as exc:
            log.warning("bot LLM answer failed: %s", exc)
            answer = None
        finally:
            typing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await typing
        if answer and answer.strip():
            await ctx.reply(markdown_to_bbcode(answer.strip()), main_menu())
            return
    ranked = await ctx.classify(question, categories)
    if ranked:
        best, confidence = ranked[0]
        text = "Похоже на возражение:\n" + render_tip(best, confidence=confidence)
    else:
        text = "Не нашёл подходящей рекомендации."
    await ctx.reply(f"{text}\n\n{commands_hint()}", main_menu())


async def unknown_command(ctx: BotContext) -> None:
    await ctx.reply(f"Не знаю команду /{bb_escape(ctx.event.command)}.\n{commands_hint()}", main_menu())


def router() -> Router:
    r = Router("chat", priority=100)
    r.on(lambda e: e.kind in ("message", "command") and bool(e.command))(unknown_command)
    r.on(is_kind("message"))(free_text)
    return r
