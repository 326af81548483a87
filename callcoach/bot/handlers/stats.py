"""/stats [today|week|month] [@manager]: calls analysed, objections by category, share handled,
sentiment. Others' statistics only for those allowed to see them (see callcoach.rights)."""

from __future__ import annotations

from datetime import datetime

from callcoach.bot.context import BotContext
from callcoach.bot.keyboards import command_button, keyboard
from callcoach.bot.router import BotCommand, Router
from callcoach.bot.stats import compute_stats, parse_stats_args, per_manager, period_of, render_stats
from callcoach.texts import bb_escape

STATS = BotCommand(
    "stats",
    "Статистика звонков",
    params="сегодня|неделя|месяц @менеджер",
    help="/stats [сегодня|неделя|месяц] [@менеджер] — статистика звонков, "
    "например [send=/stats week]/stats week[/send]",
    hint="[send=/stats]/stats[/send]",
    aliases=("статистика", "стат"),
)

DENIED = "Статистика других менеджеров доступна только руководителю их отдела и администраторам портала."


async def stats(ctx: BotContext) -> None:
    query = parse_stats_args(ctx.event.params)
    period = period_of(query.period, datetime.now().astimezone())
    access = await ctx.access()
    chart = await ctx.chart()
    viewer = ctx.event.user_id
    jobs_repo = ctx.deps.store.jobs
    buttons = keyboard(
        [
            command_button("Сегодня", "stats", "today"),
            command_button("Неделя", "stats", "week"),
            command_button("Месяц", "stats", "month"),
        ]
    )
    if query.manager:
        found = chart.find_user(query.manager)
        if not found:
            await ctx.reply(f"Не нашёл сотрудника «{bb_escape(query.manager)}».")
            return
        visible = [uid for uid in found if access.can_see(uid)]
        if not visible:
            await ctx.reply(DENIED)
            return
        if len(visible) > 1:
            names = ", ".join(f"{bb_escape(chart.names.get(u, str(u)))} (/stats @{u})" for u in visible[:10])
            await ctx.reply(f"Нашлось несколько сотрудников: {names}. Уточните.")
            return
        target = visible[0]
        jobs = await jobs_repo.list_jobs(
            ctx.portal.id, since=period.since, until=period.until, manager_ids=[target], states=("done",)
        )
        title = f"Статистика {period.label}: {chart.names.get(target, f'#{target}')}"
        await ctx.reply(render_stats(compute_stats(jobs), title=title), buttons)
        return
    if not access.sees_others:
        jobs = await jobs_repo.list_jobs(
            ctx.portal.id, since=period.since, until=period.until, manager_ids=[viewer], states=("done",)
        )
        await ctx.reply(render_stats(compute_stats(jobs), title=f"Ваша статистика {period.label}"), buttons)
        return
    managers = None if access.managers is None else sorted(access.managers)
    jobs = await jobs_repo.list_jobs(
        ctx.portal.id, since=period.since, until=period.until, manager_ids=managers, states=("done",)
    )
    scope = "по порталу" if access.is_admin else "по вашему отделу"
    text = render_stats(compute_stats(jobs), title=f"Статистика {scope} {period.label}")
    rows = []
    for manager_id, own in sorted(per_manager(jobs).items(), key=lambda p: -len(p[1])):
        s = compute_stats(own)
        share = s.handled_share
        handled = f", отработано {round(share * 100)}%" if share is not None else ""
        rows.append(
            f"• {bb_escape(chart.names.get(manager_id, f'#{manager_id}'))}: звонков {s.calls}, "
            f"возражений {s.total_objections}{handled}"
        )
    if rows:
        text += "\n[b]По менеджерам:[/b]\n" + "\n".join(rows[:50])
    await ctx.reply(text, buttons)


def router() -> Router:
    r = Router("stats", priority=30)
    r.command(STATS)(stats)
    return r
