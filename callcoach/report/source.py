"""Report input from the database: finished jobs become CallRecords. Used by the dashboard
(live, each viewer seeing the calls ``callcoach.rights`` lets him see) and by ``callcoach report
--from --to`` (offline). Managers are named from the portal's ``user.get`` (the org chart the chat
bot uses) when the portal answers, and shown as ``#id`` when it does not."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

import aiohttp

from callcoach import __version__
from callcoach.b24.errors import B24Error
from callcoach.config import Settings
from callcoach.pipeline.categories import merge_categories
from callcoach.pipeline.models import Findings, ProposedCategory
from callcoach.portal_clients import PortalClients
from callcoach.report.data import CallRecord, ReportInput
from callcoach.report.links import call_page_url
from callcoach.rights import load_chart
from callcoach.storage import Job, Store
from callcoach.storage.portals import Portal

log = logging.getLogger(__name__)

NAMES_TIMEOUT_S = 20.0  # `callcoach report` waits this long at most for the portal's names

STATUS: dict[str, Literal["analysed", "skipped", "failed"]] = {
    "done": "analysed",
    "skipped": "skipped",
    "failed": "failed",
}
DIRECTION: dict[int, Literal["incoming", "outgoing"]] = {
    1: "outgoing",
    4: "outgoing",
    2: "incoming",
    3: "incoming",
}


def job_record(
    job: Job, portal: Portal, settings: Settings, names: Mapping[int, str] | None = None
) -> CallRecord:
    findings = Findings.model_validate(job.findings) if job.findings else None
    started = job.call_start or job.created_at
    return CallRecord(
        call_id=job.call_id,
        job_id=str(job.id),
        portal=portal.domain,
        file=job.call_id,
        started_at=datetime.fromtimestamp(started, UTC),
        direction=DIRECTION.get(job.call_type or 0),
        manager_id=job.manager_id,
        manager_name=(names or {}).get(job.manager_id or 0)
        or (f"#{job.manager_id}" if job.manager_id else None),
        status=STATUS[job.state],
        reason=job.reason,
        duration=float(job.duration or (findings.duration if findings else 0.0)),
        findings=findings,
        page_url=call_page_url(settings, job.id),
    )


def _bounds(date_from: date | None, date_to: date | None) -> tuple[float | None, float | None]:
    since = datetime.combine(date_from, time.min, tzinfo=UTC).timestamp() if date_from else None
    until = (
        datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC).timestamp() if date_to else None
    )
    return since, until


async def report_input_for(
    store: Store,
    settings: Settings,
    portal: Portal,
    date_from: date | None,
    date_to: date | None,
    *,
    names: Mapping[int, str] | None = None,
    manager_ids: Collection[int] | None = None,
) -> ReportInput:
    """``manager_ids``: only these managers' calls (None: everyone's)."""
    since, until = _bounds(date_from, date_to)
    jobs = await store.jobs.list_jobs(
        portal.id,
        since=since,
        until=until,
        states=tuple(STATUS),
        manager_ids=None if manager_ids is None else sorted(manager_ids),
    )
    proposals = [
        ProposedCategory(name=p.name, code=p.code, examples=p.examples, size=p.size)
        for p in await store.categories.proposals(portal.id)
    ]
    return ReportInput(
        records=[job_record(j, portal, settings, names) for j in jobs],
        proposals=proposals,
        categories=merge_categories(await store.categories.custom(portal.id)),
        period_from=date_from,
        period_to=date_to,
        title=f"Аналитика звонков · {portal.domain}",
    )


async def load_report_input(
    settings: Settings,
    *,
    date_from: date | None,
    date_to: date | None,
    portal: str | None,
    warn: Callable[[str], None] | None = None,
) -> ReportInput:
    """For ``callcoach report``: one portal's calls (the only one when ``portal`` is None), the
    managers named by the portal when it answers; ``warn`` hears when it does not."""
    store = await Store.open(settings.effective_database_url)
    try:
        portals = await store.portals.installed()
        if portal:
            portals = [p for p in portals if portal in (p.domain, p.member_id)]
        if len(portals) != 1:
            known = ", ".join(p.domain for p in await store.portals.installed()) or "none installed"
            raise RuntimeError(f"name one portal with --portal ({known})")
        names = await portal_names(settings, store, portals[0], warn=warn)
        return await report_input_for(store, settings, portals[0], date_from, date_to, names=names)
    finally:
        await store.close()


async def portal_names(
    settings: Settings,
    store: Store,
    portal: Portal,
    *,
    timeout_s: float = NAMES_TIMEOUT_S,
    warn: Callable[[str], None] | None = None,
) -> dict[int, str] | None:
    """The portal's people by id, asked of the portal itself; None (with a warning, to ``warn`` or
    the log) when it cannot be reached in ``timeout_s``: the report then names managers ``#id``."""
    async with aiohttp.ClientSession(headers={"User-Agent": f"{settings.app_name}/{__version__}"}) as session:
        client = PortalClients(settings, session, store.portals).for_portal(portal)
        try:
            async with asyncio.timeout(timeout_s):
                chart = await load_chart(client)
        except (B24Error, TimeoutError) as exc:
            message = f"managers' names unavailable, shown as #id: portal {portal.domain}: {exc or 'timeout'}"
            (warn or log.warning)(message)
            return None
    return chart.names
