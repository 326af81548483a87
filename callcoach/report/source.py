"""Report input from the database: finished jobs become CallRecords. Used by the dashboard
(live, each viewer seeing the calls ``callcoach.rights`` lets him see) and by ``callcoach report
--from --to`` (offline). Managers are named from the portal's ``user.get`` (the org chart the chat
bot uses) when the portal answers, and shown as ``#id`` when it does not."""

from __future__ import annotations

import asyncio
import logging
import time as time_mod
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal

import aiohttp

from callcoach import __version__
from callcoach.b24.errors import B24Error
from callcoach.config import Settings
from callcoach.pipeline.categories import merge_categories
from callcoach.pipeline.models import Findings, ProposedCategory
from callcoach.portal_clients import PortalClients
from callcoach.report.data import CallRecord, ReportInput
from callcoach.report.links import sign_call_link
from callcoach.rights import OrgChart, access_for, load_chart
from callcoach.storage import Job, Store
from callcoach.storage.portals import Portal

if TYPE_CHECKING:
    from callcoach.context import Services
    from callcoach.handlers.dashboard import PortalRef, UserRef, Viewer

log = logging.getLogger(__name__)

NAMES_TIMEOUT_S = 20.0  # `callcoach report` waits this long at most for the portal's names
CHART_TIMEOUT_S = 10.0  # a dashboard page waits this long at most for the portal's org chart
CHART_RETRY_S = 30.0  # after a failed load, pages go without the chart this long before asking again

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
    base = settings.public_base()
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
        page_url=sign_call_link(settings.signing_key(), base, job.id, settings.link_ttl_days * 86400)
        if base
        else None,
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


class StoreDashboardSource:
    """The dashboard's data, read from the running app's services at each request."""

    def __init__(self, services_of: Any, *, clock: Callable[[], float] = time_mod.monotonic) -> None:
        self._services_of = services_of  # () -> Services; the store exists only once the app runs
        self._clock = clock
        self._chart_failed: dict[int, float] = {}  # portal id -> when its org chart last failed

    async def portal(self, member_id: str) -> PortalRef | None:
        from callcoach.handlers.dashboard import PortalRef

        p = await self._services_of().store.portals.by_member(member_id)
        # an inbound-webhook pseudo-portal has no app, so no user tokens to check: nobody signs in
        if p is None or not p.installed or p.mode != "app":
            return None
        return PortalRef(member_id=p.member_id, domain=p.domain, client_endpoint=p.client_endpoint)

    async def verify_user(self, portal: PortalRef, auth_id: str) -> UserRef | None:
        from callcoach.handlers.dashboard import verify_user_via_rest

        services = self._services_of()
        p = await services.store.portals.by_member(portal.member_id)
        if p is None or p.mode != "app":
            return None
        return await verify_user_via_rest(services.clients.for_user(p, auth_id))

    async def report_input(self, viewer: Viewer, date_from: date | None, date_to: date | None) -> ReportInput:
        services = self._services_of()
        p = await services.store.portals.by_member(viewer.member_id)
        if p is None:
            return ReportInput(records=[])
        chart = await self._chart(services, p)
        access = access_for(chart, viewer.user_id, is_admin=viewer.is_admin)
        return await report_input_for(
            services.store,
            services.settings,
            p,
            date_from,
            date_to,
            names=chart.names if chart else None,
            manager_ids=access.managers,
        )

    async def call_record(self, job_id: str) -> tuple[str, CallRecord] | None:
        services = self._services_of()
        if not job_id.isdigit():
            return None
        job = await services.store.jobs.get(int(job_id))
        if job is None or job.state not in STATUS:
            return None
        p = await services.store.portals.get(job.portal_id)
        if p is None:
            return None
        chart = await self._chart(services, p)
        return p.member_id, job_record(job, p, services.settings, chart.names if chart else None)

    async def can_see(self, viewer: Viewer, manager_id: int | None) -> bool:
        services = self._services_of()
        p = await services.store.portals.by_member(viewer.member_id)
        if p is None:
            return False
        chart = await self._chart(services, p)
        return access_for(chart, viewer.user_id, is_admin=viewer.is_admin).can_see(manager_id)

    async def _chart(self, services: Services, portal: Portal) -> OrgChart | None:
        """The portal's people and departments (cached per portal, shared with the chat bot), or
        None when the portal cannot be asked: then names fall back to #id and a non-admin sees only
        his own calls. A failure is remembered for a while, so pages do not each wait on it."""
        failed = self._chart_failed.get(portal.id)
        if failed is not None and self._clock() - failed < CHART_RETRY_S:
            return None
        try:
            async with asyncio.timeout(CHART_TIMEOUT_S):
                chart = await services.directory.chart(portal.id, services.clients.for_portal(portal))
        except (B24Error, TimeoutError) as exc:
            self._chart_failed[portal.id] = self._clock()
            log.warning(
                "dashboard: no org chart for %s, rights fall back to own calls: %s",
                portal.domain,
                exc or "timeout",
            )
            return None
        self._chart_failed.pop(portal.id, None)
        return chart
