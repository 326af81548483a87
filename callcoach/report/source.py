"""Report input from the database: finished jobs become CallRecords. Used by the dashboard
(live) and by ``callcoach report --from --to`` (offline)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal

from callcoach.config import Settings
from callcoach.pipeline.categories import merge_categories
from callcoach.pipeline.models import Findings, ProposedCategory
from callcoach.report.data import CallRecord, ReportInput
from callcoach.report.links import sign_call_link
from callcoach.storage import Job, Store
from callcoach.storage.portals import Portal

if TYPE_CHECKING:
    from callcoach.handlers.dashboard import PortalRef, UserRef

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
) -> ReportInput:
    since, until = _bounds(date_from, date_to)
    jobs = await store.jobs.list_jobs(portal.id, since=since, until=until, states=tuple(STATUS))
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
    settings: Settings, *, date_from: date | None, date_to: date | None, portal: str | None
) -> ReportInput:
    """For ``callcoach report``: one portal's calls (the only one when ``portal`` is None)."""
    store = await Store.open(settings.effective_database_url)
    try:
        portals = await store.portals.installed()
        if portal:
            portals = [p for p in portals if portal in (p.domain, p.member_id)]
        if len(portals) != 1:
            known = ", ".join(p.domain for p in await store.portals.installed()) or "none installed"
            raise RuntimeError(f"name one portal with --portal ({known})")
        return await report_input_for(store, settings, portals[0], date_from, date_to)
    finally:
        await store.close()


class StoreDashboardSource:
    """The dashboard's data, read from the running app's services at each request."""

    def __init__(self, services_of: Any) -> None:
        self._services_of = services_of  # () -> Services; the store exists only once the app runs

    async def portal(self, member_id: str) -> PortalRef | None:
        from callcoach.handlers.dashboard import PortalRef

        p = await self._services_of().store.portals.by_member(member_id)
        if p is None or not p.installed:
            return None
        return PortalRef(member_id=p.member_id, domain=p.domain, client_endpoint=p.client_endpoint)

    async def verify_user(self, portal: PortalRef, auth_id: str) -> UserRef | None:
        from callcoach.handlers.dashboard import verify_user_via_rest

        return await verify_user_via_rest(self._services_of().session, portal, auth_id)

    async def report_input(self, member_id: str, date_from: date | None, date_to: date | None) -> ReportInput:
        services = self._services_of()
        p = await services.store.portals.by_member(member_id)
        if p is None:
            return ReportInput(records=[])
        return await report_input_for(services.store, services.settings, p, date_from, date_to)

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
        return p.member_id, job_record(job, p, services.settings)
