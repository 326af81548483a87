"""The call flow put together from a process's services: the analysis off the event loop, the
portal's categories, the call page link, the regrouping of new objections and the hooks the
features set (LLM summary, manager's message). Web tier and worker both run it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from callcoach.context import Services
from callcoach.pipeline.categories import merge_categories
from callcoach.pipeline.models import Category, Findings, ProposedCategory
from callcoach.report.links import call_page_url
from callcoach.storage import Job
from callcoach.storage.portals import Portal
from callcoach.workflow.call_flow import CallFlow, FlowDeps


def make_flow(services: Services) -> CallFlow:
    executor = services.executor

    async def analyze(path: Path, categories: Sequence[Category]) -> Findings:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        findings: Findings = await loop.run_in_executor(
            executor, partial(services.analyzer.analyze_file, path, categories=list(categories))
        )
        refine = services.refine_objections  # the LLM's objections (CALLCOACH_ANALYSIS)
        if refine is not None:
            findings = await refine(findings, list(categories))
        services.metrics.stage_seconds.labels("analysis").observe(time.monotonic() - started)
        services.metrics.audio_seconds.inc(findings.duration)
        return findings

    async def categories_for(portal: Portal) -> list[Category]:
        return merge_categories(await services.store.categories.custom(portal.id))

    def page_url(job: Job) -> str | None:
        return call_page_url(services.settings, job.id)

    grouping_locks: dict[int, asyncio.Lock] = {}

    async def group_proposals(portal: Portal) -> None:
        known = [c.code for c in await categories_for(portal)]

        async def group(quotes: list[str]) -> list[ProposedCategory]:
            # embeddings are CPU heavy: the analysis executor runs them, the event loop waits
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                executor, partial(services.analyzer.propose_categories, quotes, existing_codes=known)
            )

        # jobs of one portal finishing together regroup one after another, each on the newest quotes
        async with grouping_locks.setdefault(portal.id, asyncio.Lock()):
            await services.store.categories.regroup(portal.id, group)

    return CallFlow(
        FlowDeps(
            settings=services.settings,
            store=services.store,
            client_for=services.clients.for_portal,
            analyze=analyze,
            categories_for=categories_for,
            page_url=page_url,
            notify=services.notify,
            notify_commands=services.notify_commands,
            write_batch=services.write_batch,
            read_batch=services.read_batch,
            summarize=services.summarize,
            group_proposals=group_proposals,
            on_stage=lambda stage, s: services.metrics.stage_seconds.labels(stage).observe(s),
        )
    )
