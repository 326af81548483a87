"""Retention: recordings are removed after CALLCOACH_KEEP_AUDIO_DAYS, findings are kept; a
portal's data is purged on request."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

from callcoach.storage import Store

log = logging.getLogger(__name__)


async def remove_old_audio(store: Store, keep_days: int, *, now: float | None = None) -> int:
    """Delete recordings of finished jobs older than ``keep_days``; returns how many."""
    cutoff = (now or time.time()) - keep_days * 86400
    removed = 0
    for job in await store.jobs.old_audio(cutoff):
        if job.audio_path:
            with contextlib.suppress(FileNotFoundError):
                Path(job.audio_path).unlink()
            removed += 1
        await store.jobs.save(job.id, audio_path=None)
    if removed:
        log.info("retention removed %d recordings older than %d days", removed, keep_days)
    return removed


async def purge_portal(store: Store, domain: str, *, before: float | None = None) -> int:
    """Remove a portal's jobs (all, or those before a moment) and their recordings.

    Without ``before`` the portal itself goes too, with its categories and proposals."""
    portal = await store.portals.by_domain(domain) or await store.portals.by_member(domain)
    if portal is None:
        raise LookupError(f"no portal {domain!r}")
    cutoff = before if before is not None else float("inf")
    jobs = [j for j in await store.jobs.list_jobs(portal.id) if (j.call_start or j.created_at) < cutoff]
    for job in jobs:
        if job.audio_path:
            with contextlib.suppress(FileNotFoundError):
                Path(job.audio_path).unlink()
    if before is None:
        await store.portals.delete(portal.id)
        return len(jobs)
    return await store.jobs.delete_before(portal.id, before)
