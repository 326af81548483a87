"""The composition root: builds every service from Settings and wires the aiohttp app.

Resources live in ``cleanup_ctx`` (aiohttp's pattern for things started and stopped with the
app), so a test can start and stop as many apps as it likes in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from callcoach import __version__, gpu
from callcoach.bot import wiring as bot_wiring
from callcoach.bot.copilot import CopilotPortal, CopilotService, register_ai_engine
from callcoach.config import Settings
from callcoach.context import SERVICES, Services
from callcoach.handlers import b24 as b24_routes
from callcoach.handlers import health as health_routes
from callcoach.handlers.ai import ai_routes, copilot_key
from callcoach.handlers.dashboard import setup_dashboard_routes
from callcoach.installer import Installer
from callcoach.llm.analysis import analysis_uses_llm, refine_findings
from callcoach.llm.base import LLMRequest
from callcoach.llm.factory import build_llm
from callcoach.metrics import Metrics
from callcoach.pipeline.categories import merge_categories
from callcoach.pipeline.models import Category, Findings, ProposedCategory
from callcoach.portal_clients import PortalClients
from callcoach.report.source import StoreDashboardSource
from callcoach.storage import Job, Store
from callcoach.storage.portals import Portal
from callcoach.workflow.batched_io import PortalBatcher
from callcoach.workflow.call_flow import CallFlow, FlowDeps
from callcoach.workflow.intake import Intake
from callcoach.workflow.retention import remove_old_audio
from callcoach.workflow.runner import JobRunner
from callcoach.workflow.sweep import sweep_all

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, analyzer: Any = None, start_worker: bool = True) -> web.Application:
    """The app; ``analyzer`` may be passed in so that tests share one loaded model."""
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.add_routes(b24_routes.routes)
    app.add_routes(health_routes.routes)
    app.add_routes(ai_routes(copilot_key))
    setup_dashboard_routes(
        app,
        StoreDashboardSource(lambda: app[SERVICES]),
        settings.signing_key(),
        public_url=settings.public_base(),
    )
    bot_wiring.setup(app)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        services = await build_services(settings, analyzer=analyzer)
        app[SERVICES] = services
        app[copilot_key] = start_llm_services(services)
        await bot_wiring.start(services)
        scheduler = AsyncIOScheduler()
        try:
            if start_worker:
                await start_background(services, scheduler)
            yield
        finally:
            if scheduler.running:
                scheduler.shutdown(wait=False)
            await stop_services(services)

    app.cleanup_ctx.append(resources)
    return app


async def build_services(settings: Settings, *, analyzer: Any = None) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await Store.open(settings.effective_database_url)
    metrics = Metrics()
    session = aiohttp.ClientSession(headers={"User-Agent": f"{settings.app_name}/{__version__}"})
    buckets = None
    if settings.redis_url:  # scaled out: one REST budget per portal for every process
        from callcoach.b24.redis_throttle import RedisBuckets

        buckets = RedisBuckets(
            settings.redis_url, settings.namespace, settings.rest_rate, settings.rest_burst
        )
    clients = PortalClients(
        settings, session, store.portals, metrics, bucket_factory=buckets.for_key if buckets else None
    )
    installer = Installer(settings, store, clients)
    closers: list[Any] = []
    if analyzer is None:
        # the models run in a child process: their CPU work must not hold up the event loop
        from callcoach.pipeline.isolated import IsolatedAnalyzer

        isolated = IsolatedAnalyzer(settings)
        closers.append(lambda: asyncio.to_thread(isolated.close))
        analyzer = isolated
    services = Services(
        settings=settings,
        store=store,
        metrics=metrics,
        session=session,
        clients=clients,
        installer=installer,
        intake=Intake(store, min_call_seconds=settings.min_call_seconds),
        analyzer=analyzer,
    )
    services.extras["executor"] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis")
    checkpoints = asyncio.create_task(store.db.checkpoint_forever(), name="sqlite-checkpoints")

    async def stop_checkpoints() -> None:
        checkpoints.cancel()

    # the intake commits what is queued before the store closes
    services.extras.setdefault("closers", []).extend([services.intake.close, stop_checkpoints, *closers])
    write_batch, read_batch = PortalBatcher(), PortalBatcher(idempotent=True)
    services.extras["write_batch"], services.extras["read_batch"] = write_batch, read_batch
    services.extras.setdefault("closers", []).extend([write_batch.close, read_batch.close])
    if buckets is not None:
        services.extras["closers"].append(buckets.close)
    if settings.webhook_url:
        await register_webhook_portal(settings, store)
    return services


async def register_webhook_portal(settings: Settings, store: Store) -> Portal:
    """Inbound-webhook mode: one pseudo-portal whose 'endpoint' is the webhook URL."""
    url = str(settings.webhook_url)
    host = urlsplit(url).netloc
    return await store.portals.upsert_install(
        member_id=f"webhook:{host}",
        domain=host,
        client_endpoint=url if url.endswith("/") else url + "/",
        server_endpoint="",
        access_token="",
        refresh_token="",
        expires_at=0,
        application_token="",
        scope="",
        mode="webhook",
    )


def make_flow(services: Services) -> CallFlow:
    settings = services.settings
    loop_executor = services.extras["executor"]

    async def analyze(path: Path, categories: Sequence[Category]) -> Findings:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        findings: Findings = await loop.run_in_executor(
            loop_executor, partial(services.analyzer.analyze_file, path, categories=list(categories))
        )
        refine = services.extras.get("refine_objections")  # the LLM's objections (CALLCOACH_ANALYSIS)
        if refine is not None:
            findings = await refine(findings, list(categories))
        services.metrics.stage_seconds.labels("analysis").observe(time.monotonic() - started)
        services.metrics.audio_seconds.inc(findings.duration)
        return findings

    async def categories_for(portal: Portal) -> list[Category]:
        return merge_categories(await services.store.categories.custom(portal.id))

    def page_url(job: Job) -> str | None:
        base = settings.public_base()
        if not base:
            return None
        from callcoach.report.links import sign_call_link

        return sign_call_link(settings.signing_key(), base, job.id, settings.link_ttl_days * 86400)

    grouping_locks: dict[int, asyncio.Lock] = {}

    async def group_proposals(portal: Portal) -> None:
        known = [c.code for c in await categories_for(portal)]

        async def group(quotes: list[str]) -> list[ProposedCategory]:
            # embeddings are CPU heavy: the analysis executor runs them, the event loop waits
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                loop_executor, partial(services.analyzer.propose_categories, quotes, existing_codes=known)
            )

        # jobs of one portal finishing together regroup one after another, each on the newest quotes
        async with grouping_locks.setdefault(portal.id, asyncio.Lock()):
            await services.store.categories.regroup(portal.id, group)

    return CallFlow(
        FlowDeps(
            settings=settings,
            store=services.store,
            client_for=services.clients.for_portal,
            analyze=analyze,
            categories_for=categories_for,
            page_url=page_url,
            notify=services.extras.get("notify"),
            notify_commands=services.extras.get("notify_commands"),
            write_batch=services.extras.get("write_batch"),
            read_batch=services.extras.get("read_batch"),
            summarize=services.extras.get("summarize"),
            group_proposals=group_proposals,
            on_stage=lambda stage, s: services.metrics.stage_seconds.labels(stage).observe(s),
        )
    )


def start_llm_services(services: Services) -> CopilotService:
    """The LLM backend (or none), the CoPilot provider on it, its install step and the LLM-made
    call summary."""
    settings = services.settings
    llm = build_llm(settings, session=services.session, on_latency=services.metrics.on_llm)
    services.llm = llm
    use_llm_analysis = analysis_uses_llm(settings)  # CALLCOACH_ANALYSIS=llm without an LLM fails here

    async def lookup(secret: str) -> CopilotPortal | None:
        portal = await services.store.portals.by_ai_secret(secret)
        if portal is None or not portal.installed:
            return None
        return CopilotPortal(member_id=portal.member_id, domain=portal.domain)

    copilot = CopilotService(llm, services.session, lookup)
    services.copilot = copilot
    closers = services.extras.setdefault("closers", [])
    closers.append(copilot.close)
    if llm is None:
        return copilot  # nothing to offer CoPilot; the endpoint answers with an error callback
    closers.append(llm.close)

    async def register_engine(portal: Portal, client: Any) -> None:
        base = settings.public_base()
        if base and portal.mode == "app" and portal.ai_secret:
            await register_ai_engine(
                client, public_url=base, secret=portal.ai_secret, context_limit=llm.context_limit
            )

    services.installer.add_step("CoPilot engine", register_engine)

    async def summarize(findings: Findings) -> str | None:
        request = LLMRequest.ask(
            "Кратко, в двух-трёх предложениях, изложи суть звонка: чего хотел клиент, какие возражения "
            "прозвучали и чем закончился разговор.\n\n" + findings.transcript,
            system="Ты помощник руководителя отдела продаж. Пиши по-русски, без Markdown.",
            max_tokens=300,
            temperature=0.2,
        )
        return (await llm.complete(request)).strip() or None

    services.extras["summarize"] = summarize
    if use_llm_analysis:

        async def refine_objections(findings: Findings, categories: list[Category]) -> Findings:
            return await refine_findings(llm, findings, categories)

        services.extras["refine_objections"] = refine_objections
    return copilot


async def start_background(services: Services, scheduler: AsyncIOScheduler) -> None:
    settings = services.settings
    if settings.broker_url:
        # Scaled out: this is the web tier; `callcoach worker` processes hold the models and run
        # the calls, this process publishes them (workflow/celery_app.py).
        from callcoach.workflow.dispatch import start_dispatcher

        await start_dispatcher(services)
    else:
        loop = asyncio.get_running_loop()
        gpu.limit_memory(settings.gpu_memory_fraction)
        # Load the models off the event loop: /healthz answers meanwhile and says they are loading.
        load = loop.run_in_executor(services.extras["executor"], services.analyzer.load)
        services.extras["model_load"] = load
        load.add_done_callback(_log_load_failure)
        runner = JobRunner(settings, services.store, make_flow(services), services.metrics)
        services.runner = runner
        services.intake.wake = runner.wake
        await runner.start()
    if settings.sweep_minutes > 0:
        scheduler.add_job(
            _sweep,
            "interval",
            minutes=settings.sweep_minutes,
            args=[services],
            id="sweep",
            max_instances=1,
            coalesce=True,
        )
    scheduler.add_job(
        remove_old_audio,
        "interval",
        hours=6,
        args=[services.store, settings.keep_audio_days],
        id="retention",
        max_instances=1,
        coalesce=True,
    )
    for job_id, func, seconds in services.extras.get("scheduled", []):
        scheduler.add_job(func, "interval", seconds=seconds, id=job_id, max_instances=1, coalesce=True)
    scheduler.start()
    services.extras["scheduler"] = scheduler


def _log_load_failure(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("loading the models failed: %s", fut.exception())


async def _sweep(services: Services) -> None:
    added = await sweep_all(services.store, services.clients.for_portal, default_lookback=timedelta(days=1))
    if added and services.runner is not None:
        services.runner.wake()


async def stop_services(services: Services) -> None:
    if services.runner is not None:
        await services.runner.stop()
    for closer in services.extras.get("closers", []):
        with contextlib.suppress(Exception):
            await closer()
    await services.session.close()
    await services.store.close()
    executor = services.extras.get("executor")
    if executor is not None:
        executor.shutdown(wait=False, cancel_futures=True)
