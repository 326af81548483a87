"""The services every role needs (web tier, worker): the store, the HTTP session, the portal
clients on their REST budget, the installer, the intake, the analyzer and its executor, the
write-back batches and the LLM. ``callcoach.app`` (web) and ``callcoach.workflow.worker`` build on
them; each adds only what its role runs."""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import aiohttp

from callcoach import __version__
from callcoach.b24.addresses import AddressPolicy, GuardedConnector
from callcoach.config import Settings
from callcoach.context import Services
from callcoach.installer import Installer
from callcoach.llm.analysis import analysis_uses_llm
from callcoach.llm.factory import build_llm
from callcoach.llm.summary import LLMHooks
from callcoach.metrics import Metrics
from callcoach.pipeline.protocol import CallAnalyzer
from callcoach.portal_clients import PortalClients
from callcoach.storage import Store
from callcoach.storage.portals import Portal
from callcoach.workflow.batched_io import PortalBatcher
from callcoach.workflow.intake import Intake


def http_session(settings: Settings) -> aiohttp.ClientSession:
    """The app's outgoing HTTP: to portals only on addresses the policy allows (no cloud
    metadata, no private network unless allowed), to the hosts the operator configured as they
    are (``b24/addresses.py``)."""
    configured = (
        settings.oauth_url,
        settings.webhook_url,
        settings.openai_base_url,
        settings.gemini_base_url,
    )
    policy = AddressPolicy.for_urls(settings.allow_private_portals, [str(u) for u in configured if u])
    return aiohttp.ClientSession(
        headers={"User-Agent": f"{settings.app_name}/{__version__}"}, connector=GuardedConnector(policy)
    )


async def build_services(
    settings: Settings, *, analyzer: CallAnalyzer | None = None, analysis_threads: int = 1
) -> Services:
    """``analyzer`` may be passed in so that tests share one loaded model; without it the models
    run in a child process. ``analysis_threads``: calls analysed at once (a worker overlaps them)."""
    use_llm_analysis = analysis_uses_llm(settings)  # CALLCOACH_ANALYSIS=llm without an LLM fails here
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await Store.open(settings.effective_database_url)
    metrics = Metrics()
    session = http_session(settings)
    buckets = None
    if settings.redis_url:  # scaled out: one REST budget per portal for every process
        from callcoach.b24.redis_throttle import RedisBuckets

        buckets = RedisBuckets(
            settings.redis_url, settings.namespace, settings.rest_rate, settings.rest_burst
        )
    clients = PortalClients(
        settings, session, store.portals, metrics, bucket_factory=buckets.for_key if buckets else None
    )
    isolated = None
    if analyzer is None:
        # the models run in a child process: their CPU work must not hold up the event loop
        from callcoach.pipeline.isolated import IsolatedAnalyzer

        analyzer = isolated = IsolatedAnalyzer(settings)
    llm = build_llm(settings, session=session, on_latency=metrics.on_llm)
    services = Services(
        settings=settings,
        store=store,
        metrics=metrics,
        session=session,
        clients=clients,
        installer=Installer(settings, store, clients),
        intake=Intake(store, min_call_seconds=settings.min_call_seconds),
        analyzer=analyzer,
        executor=ThreadPoolExecutor(max_workers=max(1, analysis_threads), thread_name_prefix="analysis"),
        write_batch=PortalBatcher(),
        read_batch=PortalBatcher(idempotent=True),
        llm=llm,
    )
    checkpoints = asyncio.create_task(store.db.checkpoint_forever(), name="sqlite-checkpoints")

    async def stop_checkpoints() -> None:
        checkpoints.cancel()

    # the intake commits what is queued before the store closes
    services.closers += [services.intake.close, stop_checkpoints]
    if isolated is not None:
        services.closers.append(lambda: asyncio.to_thread(isolated.close))
    services.closers += [services.write_batch.close, services.read_batch.close]
    if buckets is not None:
        services.closers.append(buckets.close)
    if llm is not None:
        hooks = LLMHooks(llm)
        services.summarize = hooks.summarize
        if use_llm_analysis:
            services.refine_objections = hooks.refine_objections
        services.closers.append(llm.close)
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


async def stop_services(services: Services) -> None:
    """Close what ``build_services`` and the features opened (the role stops its runner first)."""
    for closer in services.closers:
        with contextlib.suppress(Exception):
            await closer()
    await services.session.close()
    await services.store.close()
    services.executor.shutdown(wait=False, cancel_futures=True)
