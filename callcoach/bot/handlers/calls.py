"""/call <CALL_ID or deal id>: the findings of one call, if the asker may see it."""

from __future__ import annotations

from callcoach.bot.context import BotContext
from callcoach.bot.formatting import bb_escape, text_to_bbcode
from callcoach.bot.router import Router
from callcoach.pipeline.models import Findings
from callcoach.storage import Job
from callcoach.workflow.comment import SENTIMENT_RU, TOPIC_RU, clock

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


def render_call(job: Job, findings: Findings, page_url: str | None) -> str:
    sentiment = findings.sentiment.overall.label
    topic = TOPIC_RU.get(findings.topic.label, findings.topic.label)
    lines = [
        f"[b]Звонок {bb_escape(job.call_id)}[/b] · {clock(findings.duration)} · "
        f"тон: {SENTIMENT_RU.get(sentiment, sentiment)} · тема: {topic}"
    ]
    if job.entity_type and job.entity_id:
        lines.append(f"CRM: {job.entity_type} {job.entity_id}")
    if findings.objections:
        handled = sum(1 for o in findings.objections if o.handled)
        lines.append(f"[b]Возражения ({len(findings.objections)}, отработано {handled}):[/b]")
        for n, obj in enumerate(findings.objections, 1):
            mark = "✓" if obj.handled else "✗"
            lines.append(
                f"{n}. {mark} [b]{bb_escape(obj.category_name or obj.category)}[/b] ({clock(obj.start)}): "
                f"[i]«{bb_escape(obj.quote)}»[/i]"
            )
            if obj.manager_reply:
                lines.append(f"   Ответ менеджера: «{bb_escape(obj.manager_reply)}»")
            if obj.recommendation:
                lines.append(f"   Как ответить: {text_to_bbcode(obj.recommendation)}")
    else:
        lines.append("Возражений клиента не найдено.")
    if findings.speakers_known:
        lines.append(
            f"Доля речи менеджера: {round(findings.stats.talk_ratio * 100)}% · "
            f"вопросов менеджера: {findings.stats.manager_questions}"
        )
    if findings.summary:
        lines.append(f"Итог: {text_to_bbcode(findings.summary)}")
    if page_url:
        lines.append(f"[url={page_url}]Полный разбор звонка[/url]")
    return "\n".join(lines)


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
    page_url = None
    settings = ctx.deps.settings
    if settings.public_base():
        from callcoach.report.links import sign_call_link

        page_url = sign_call_link(
            settings.signing_key(), settings.public_base(), job.id, settings.link_ttl_days * 86400
        )
    await ctx.reply(render_call(job, findings, page_url))


def router() -> Router:
    r = Router("calls")
    r.command("call", "звонок")(show_call)
    return r
