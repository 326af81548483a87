"""/categories: list, add, export/import (JSON), delete, and the pipeline's proposals accepted or
rejected with keyboard buttons. Changes are for administrators and heads of departments."""

from __future__ import annotations

import re

from callcoach.bot.context import BotContext
from callcoach.bot.keyboards import command_button, keyboard, proposal_buttons
from callcoach.bot.router import BotCommand, Router
from callcoach.pipeline.categories import (
    STANDARD_CODES,
    CategoryFormatError,
    categories_from_json,
    categories_to_json,
)
from callcoach.pipeline.models import Category
from callcoach.texts import bb_escape

CATEGORIES = BotCommand(
    "categories",
    "Категории возражений",
    params="add|export|import|accept|reject",
    help=(
        "[send=/categories]/categories[/send] — категории возражений; add, export, import, "
        "предложения новых категорий\n"
        "  /categories add Название | рекомендация | пример1; пример2\n"
        "  /categories export · /categories import [JSON]"
    ),
    hint="[send=/categories]/categories[/send]",
    aliases=("category", "категории"),
)

ADD_SYNTAX = "/categories add Название | рекомендация | пример1; пример2; пример3"
NOT_ALLOWED = "Менять категории могут администраторы портала и руководители отделов."
DEFAULT_RECOMMENDATION = (
    "Выясните, что стоит за возражением: задайте уточняющий вопрос, признайте опасение клиента и "
    "предложите конкретный следующий шаг."
)

_TRANSLIT = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        "a b v g d e e zh z i y k l m n o p r s t u f h ts ch sh sch _ y _ e yu ya".split(),
        strict=True,
    )
)


def code_for(name: str, taken: set[str]) -> str:
    latin = "".join(_TRANSLIT.get(ch, ch) for ch in name.lower())
    base = re.sub(r"[^a-z0-9]+", "_", latin).strip("_")[:40] or "custom"
    if not base[0].isalpha():
        base = "c_" + base
    if len(base) < 2:
        base += "_c"
    code, n = base, 2
    while code in taken:
        code, n = f"{base}_{n}", n + 1
    return code


def parse_add(params: str) -> tuple[str, str, list[str]]:
    """``Название | рекомендация | пример1; пример2`` → (name, recommendation, examples)."""
    parts = [p.strip() for p in params.split("|")]
    name = parts[0] if parts else ""
    recommendation = parts[1] if len(parts) > 1 else ""
    examples = [e.strip() for e in re.split(r"[;\n]", parts[2])] if len(parts) > 2 else []
    return name, recommendation, [e for e in examples if e]


async def _can_edit(ctx: BotContext) -> bool:
    access = await ctx.access()
    return access.is_admin or access.sees_others


async def list_categories(ctx: BotContext) -> None:
    categories = await ctx.categories()
    lines = ["[b]Категории возражений[/b]"]
    for c in categories:
        mark = "" if c.standard else " [i](своя)[/i]"
        lines.append(f"• [send=/tips {c.code}]{bb_escape(c.name)}[/send] ({c.code}){mark}")
    proposals = await ctx.deps.store.categories.proposals(ctx.portal.id)
    rows = []
    if proposals:
        lines.append("\n[b]Предложены новые категории[/b] (похожие возражения, не подошедшие ни к одной):")
        for p in proposals[:10]:
            examples = "; ".join(f"«{bb_escape(e)}»" for e in p.examples[:3])
            lines.append(f"• #{p.id} [b]{bb_escape(p.name)}[/b] — {p.size} раз: {examples}")
            rows.append(proposal_buttons(p.id, p.name))
    lines.append(f"\nДобавить: {ADD_SYNTAX}\nВыгрузить: [send=/categories export]/categories export[/send]")
    rows.append([command_button("Выгрузить JSON", "categories", "export")])
    await ctx.reply("\n".join(lines), keyboard(*rows))


async def add_category(ctx: BotContext, params: str) -> None:
    if not await _can_edit(ctx):
        await ctx.reply(NOT_ALLOWED)
        return
    name, recommendation, examples = parse_add(params)
    if not name:
        await ctx.reply(f"Нужно название. Формат: {ADD_SYNTAX}")
        return
    if not examples:
        await ctx.reply(f"Нужна хотя бы одна фраза клиента — по ним я узнаю возражение. Формат: {ADD_SYNTAX}")
        return
    existing = await ctx.categories()
    taken = {c.code for c in existing}
    same = next((c for c in existing if c.name.lower() == name.lower() and not c.standard), None)
    code = same.code if same else code_for(name, taken)
    category = Category(code=code, name=name, examples=examples, recommendation=recommendation)
    await ctx.deps.store.categories.save(ctx.portal.id, category)
    await ctx.reply(
        f"Категория [b]{bb_escape(name)}[/b] ({code}) {'обновлена' if same else 'добавлена'}: "
        f"{len(examples)} примеров. Она будет использоваться со следующего звонка."
    )


async def decide(ctx: BotContext, params: str, *, accept: bool) -> None:
    if not await _can_edit(ctx):
        await ctx.reply(NOT_ALLOWED)
        return
    head, _, recommendation = params.partition("|")
    ref = head.strip().lstrip("#")
    if not ref.isdigit():
        await ctx.reply("Укажите номер предложения: /categories accept <номер> [| рекомендация]")
        return
    repo = ctx.deps.store.categories
    proposal = await repo.proposal(int(ref))
    if proposal is None or proposal.portal_id != ctx.portal.id:
        await ctx.reply(f"Предложения #{ref} нет.")
        return
    if proposal.status != "proposed":
        await ctx.reply(f"Предложение #{ref} уже рассмотрено ({proposal.status}).")
        return
    category = await repo.decide(
        proposal.id,
        accept=accept,
        user_id=ctx.event.user_id,
        recommendation=recommendation.strip() or (DEFAULT_RECOMMENDATION if accept else ""),
    )
    if accept and category is not None:
        await ctx.reply(
            f"Категория [b]{bb_escape(category.name)}[/b] ({category.code}) принята и будет "
            "использоваться со следующего звонка. Рекомендацию можно уточнить: "
            f"/categories add {bb_escape(category.name)} | новая рекомендация | примеры"
        )
    else:
        await ctx.reply(f"Предложение #{ref} «{bb_escape(proposal.name)}» отклонено.")


async def export_categories(ctx: BotContext) -> None:
    custom = await ctx.deps.store.categories.custom(ctx.portal.id)
    if not custom:
        await ctx.reply("Своих категорий пока нет. Выгружаю стандартные как образец:")
        from callcoach.pipeline.categories import standard_categories

        custom = standard_categories()[:1]
    body = categories_to_json(custom)
    await ctx.reply(f"[code]{bb_escape_code(body)}[/code]\nЗагрузить обратно: /categories import <JSON>")


def bb_escape_code(text: str) -> str:
    # A "[/code]" inside the JSON would end the block early.
    return text.replace("[/code]", "[/ code]")


async def import_categories(ctx: BotContext, params: str) -> None:
    if not await _can_edit(ctx):
        await ctx.reply(NOT_ALLOWED)
        return
    text = re.sub(r"^\s*\[code\]|\[/code\]\s*$", "", params.strip(), flags=re.I).strip()
    if not text:
        await ctx.reply('Вставьте JSON после команды: /categories import [{"code": ..., "name": ...}]')
        return
    try:
        categories = categories_from_json(text)
    except CategoryFormatError as exc:
        await ctx.reply(f"Не загрузил, ничего не изменено: {bb_escape(str(exc))}")
        return
    for category in categories:
        await ctx.deps.store.categories.save(ctx.portal.id, category.model_copy(update={"standard": False}))
    names = ", ".join(bb_escape(c.name) for c in categories)
    await ctx.reply(f"Загружено категорий: {len(categories)} ({names}).")


async def delete_category(ctx: BotContext, params: str) -> None:
    if not await _can_edit(ctx):
        await ctx.reply(NOT_ALLOWED)
        return
    code = params.strip()
    if await ctx.deps.store.categories.deactivate(ctx.portal.id, code):
        note = " Стандартная категория вернётся в исходном виде." if code in STANDARD_CODES else ""
        await ctx.reply(f"Категория {bb_escape(code)} отключена.{note}")
    else:
        await ctx.reply(f"Своей категории {bb_escape(code)} нет.")


async def categories(ctx: BotContext) -> None:
    head = re.match(r"(\S*)\s*(.*)", ctx.event.params.strip(), re.S)
    sub, rest = (head.group(1).lower(), head.group(2)) if head else ("", "")
    if sub in ("", "list", "список"):
        await list_categories(ctx)
    elif sub in ("add", "добавить"):
        await add_category(ctx, rest)
    elif sub in ("accept", "принять"):
        await decide(ctx, rest, accept=True)
    elif sub in ("reject", "отклонить"):
        await decide(ctx, rest, accept=False)
    elif sub in ("export", "выгрузить"):
        await export_categories(ctx)
    elif sub in ("import", "загрузить"):
        await import_categories(ctx, rest)
    elif sub in ("delete", "удалить"):
        await delete_category(ctx, rest)
    else:
        await ctx.reply(
            "Не понял. Варианты: /categories, /categories add …, /categories export, "
            "/categories import <JSON>, /categories delete <код>"
        )


def router() -> Router:
    r = Router("categories", priority=50)
    r.command(CATEGORIES)(categories)
    return r
