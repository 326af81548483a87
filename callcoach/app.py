"""The web tier's composition root: the services every role needs (``callcoach.services``), then
each feature's ``setup(app)`` — its routes and its part of the app's life — and, where this
process runs the calls, the job runner and the scheduler.

Resources live in ``cleanup_ctx`` (aiohttp's pattern for things started and stopped with the
app; cleaned up in reverse order), so a test can start and stop as many apps as it likes in one
process. A worker process (``callcoach.workflow.worker``) builds on the same services.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from callcoach import gpu
from callcoach.config import Settings
from callcoach.context import SERVICES, Services
from callcoach.handlers import ai, b24, bot, dashboard_source, health
from callcoach.pipeline.protocol import CallAnalyzer
from callcoach.services import build_services, stop_services
from callcoach.workflow.assemble import make_flow
from callcoach.workflow.retention import remove_old_audio
from callcoach.workflow.runner import JobRunner
from callcoach.workflow.sweep import sweep_all

log = logging.getLogger(__name__)
CtxFactory = Callable[[web.Application], AsyncIterator[None]]


def create_app(
    settings: Settings, *, analyzer: CallAnalyzer | None = None, start_worker: bool = True
) -> web.Application:
    """The app; ``analyzer`` may be passed in so that tests share one loaded model.
    ``start_worker=False``: no job runner nor scheduler (the app only answers requests)."""
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.cleanup_ctx.append(_services(settings, analyzer))
    # the features, in the order their install steps run
    b24.setup(app)
    health.setup(app)
    ai.setup(app)
    dashboard_source.setup(app, settings)
    bot.setup(app)
    if start_worker:
        app.cleanup_ctx.append(_background)
    return app


def _services(settings: Settings, analyzer: CallAnalyzer | None) -> CtxFactory:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        services = await build_services(settings, analyzer=analyzer)
        app[SERVICES] = services
        try:
            yield
        finally:
            await stop_services(services)

    return ctx


async def _background(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    scheduler = AsyncIOScheduler()
    try:
        await start_background(services, scheduler)
        yield
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
        if services.runner is not None:
            await services.runner.stop()


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
        load = loop.run_in_executor(services.executor, services.analyzer.load)
        services.model_load = load
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
    for job in services.scheduled:
        scheduler.add_job(
            job.func, "interval", seconds=job.seconds, id=job.id, max_instances=1, coalesce=True
        )
    scheduler.start()


def _log_load_failure(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.error("loading the models failed: %s", fut.exception())


async def _sweep(services: Services) -> None:
    added = await sweep_all(services.store, services.clients.for_portal, default_lookback=timedelta(days=1))
    if added and services.runner is not None:
        services.runner.wake()
