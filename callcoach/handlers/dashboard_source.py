"""The dashboard's data from the running app: its portals, its users (asked of the portal), the
report input of the calls each viewer may see (``callcoach.rights``), and the dashboard feature's
``setup``."""

from __future__ import annotations

import asyncio
import logging
import time as time_mod
from collections.abc import Callable
from datetime import date

from aiohttp import web

from callcoach.b24.errors import B24Error
from callcoach.config import Settings
from callcoach.context import SERVICES, Services
from callcoach.handlers.dashboard import (
    PortalRef,
    UserRef,
    Viewer,
    setup_dashboard_routes,
    verify_user_via_rest,
)
from callcoach.report.data import CallRecord, ReportInput
from callcoach.report.source import STATUS, job_record, report_input_for
from callcoach.rights import OrgChart, access_for
from callcoach.storage.portals import Portal

log = logging.getLogger(__name__)

CHART_TIMEOUT_S = 10.0  # a dashboard page waits this long at most for the portal's org chart
CHART_RETRY_S = 30.0  # after a failed load, pages go without the chart this long before asking again


def setup(app: web.Application, settings: Settings) -> None:
    """The dashboard's routes, reading the app's services at each request."""
    setup_dashboard_routes(
        app,
        StoreDashboardSource(lambda: app[SERVICES]),
        settings.signing_key(),
        public_url=settings.public_base(),
    )


class StoreDashboardSource:
    """The dashboard's data, read from the running app's services at each request."""

    def __init__(
        self, services_of: Callable[[], Services], *, clock: Callable[[], float] = time_mod.monotonic
    ) -> None:
        self._services_of = services_of  # () -> Services; the store exists only once the app runs
        self._clock = clock
        self._chart_failed: dict[int, float] = {}  # portal id -> when its org chart last failed

    async def portal(self, member_id: str) -> PortalRef | None:
        p = await self._services_of().store.portals.by_member(member_id)
        # an inbound-webhook pseudo-portal has no app, so no user tokens to check: nobody signs in
        if p is None or not p.installed or p.mode != "app":
            return None
        return PortalRef(member_id=p.member_id, domain=p.domain, client_endpoint=p.client_endpoint)

    async def verify_user(self, portal: PortalRef, auth_id: str) -> UserRef | None:
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
