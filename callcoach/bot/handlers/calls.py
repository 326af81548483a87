"""/call <CALL_ID or deal id>: the findings of one call, if the asker may see it."""

from __future__ import annotations

from callcoach.bot.context import BotContext
from callcoach.bot.router import BotCommand, Router
from callcoach.pipeline.models import Findings
from callcoach.report.links import call_page_url
from callcoach.storage import Job
from callcoach.texts import bb_escape, call_card

CALL = BotCommand(
    "call",
    "Разбор звонка",
    params="ID звонка или номер сделки",
    help="/call <ID звонка или номер сделки> — разбор звонка",
    hint="/call <ID>",
    aliases=("звонок",),
)

# One answer for "no such call" and "not yours": the reply must not tell that a call exists.
NOT_FOUND = "Звонок не найден или у вас нет к нему доступа."


async def find_job(ctx: BotContext, ref: str) -> Job | None:
    access = await ctx.access()
    store = ctx.deps.store.jobs
    job = await store.by_call(ctx.portal.id, ref)
    if job is not None:
        return job if access.can_see(job.manager_id) else None
    if ref.isdigit():  # a deal id: its latest call the asker may see
        managers = None if access.managers is None else sorted(access.managers)
        for candidate in await store.list_jobs(ctx.portal.id, manager_ids=managers, limit=2000):
            if candidate.entity_type in ("deal", "DEAL", "2") and candidate.entity_id == int(ref):
                return candidate
    return None


async def show_call(ctx: BotContext) -> None:
    ref = ctx.event.params.strip().split()[0] if ctx.event.params.strip() else ""
    if not ref:
        await ctx.reply("Укажите ID звонка или номер сделки: /call <ID>")
        return
    job = await find_job(ctx, ref)
    if job is None:
        await ctx.reply(NOT_FOUND)
        return
    if not job.findings:
        await ctx.reply(f"Звонок {bb_escape(job.call_id)} ещё не проанализирован (состояние: {job.state}).")
        return
    findings = Findings.model_validate(job.findings)
    crm = f"{job.entity_type} {job.entity_id}" if job.entity_type and job.entity_id else None
    page_url = call_page_url(ctx.deps.settings, job.id)
    await ctx.reply(call_card(findings, call_id=job.call_id, crm=crm, page_url=page_url))


def router() -> Router:
    r = Router("calls", priority=40)
    r.command(CALL)(show_call)
    return r
