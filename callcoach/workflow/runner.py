"""The worker pool inside ``callcoach serve``: claims jobs from the database under a lease and
drives each through the call flow. Network stages of many jobs run concurrently; the heavy
analysis goes to one dedicated executor (see ``callcoach.app``) that owns the model."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from callcoach.config import Settings
from callcoach.logs import correlated
from callcoach.metrics import Metrics
from callcoach.pipeline.errors import PipelineError
from callcoach.storage import Job, Store
from callcoach.workflow.call_flow import CallFlow, Fail, LeaseLost, Retry, Skip, is_permanent

log = logging.getLogger(__name__)


class JobRunner:
    def __init__(
        self, settings: Settings, store: Store, flow: CallFlow, metrics: Metrics | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.flow = flow
        self.metrics = metrics
        self.owner_prefix = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.processed = 0

    def wake(self) -> None:
        self._wake.set()

    def state(self) -> dict[str, Any]:
        return {
            "running": bool(self._tasks) and not self._stopping,
            "workers": len(self._tasks),
            "processed": self.processed,
        }

    async def start(self) -> None:
        self._stopping = False
        try:
            freed = await self.store.jobs.release_leases_of(self._owner_died)
            if freed:
                log.info("took back %d job(s) from processes of this host that died", freed)
        except Exception:
            log.exception("checking for jobs of dead processes failed; their leases will run out")
        for n in range(self.settings.workers):
            task = asyncio.create_task(self._worker(f"{self.owner_prefix}-w{n}"), name=f"job-worker-{n}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _owner_died(self, owner: str) -> bool:
        """A lease owner ``host-pid-tag-wN`` of this host whose process is gone. The same pid
        with another tag is a previous life of this very process number (a container restarted
        as pid 1), so it is dead too. Owners on other hosts are left to their leases."""
        host, _, rest = owner.rpartition("-w")[0].rpartition("-")[0].rpartition("-")
        if host != socket.gethostname() or not rest.isdigit():
            return False
        pid = int(rest)
        if pid == os.getpid():
            return not owner.startswith(self.owner_prefix + "-")
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return False

    async def stop(self) -> None:
        """Cancel the workers. A job cut off mid-stage keeps its state and its lease runs out,
        so the next start (or another process) resumes it."""
        self._stopping = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _worker(self, owner: str) -> None:
        while not self._stopping:
            try:
                job = await self.store.jobs.claim(owner, self.settings.job_lease_s)
            except Exception:
                log.exception("claiming a job failed")
                job = None
            if job is None:
                await self._idle()
                continue
            await self.process(job, owner)

    async def _idle(self) -> None:
        wake_at = await self.store.jobs.next_wakeup()
        timeout = 5.0 if wake_at is None else min(5.0, max(0.05, wake_at - time.time()))
        self._wake.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def process(
        self, job: Job, owner: str, *, hand_off: Callable[[Job], Awaitable[bool]] | None = None
    ) -> None:
        """Run ``job`` to its end; ``hand_off(job)`` (scaled out) may pass it on after a stage: True
        means another worker has it now (its lease went with it).

        The work runs under the job's lease, kept alive by a heartbeat. The lease is short (half a
        minute by default), so a job whose process died is taken up again within it by any live
        worker or the next process to start. Should the lease be lost all the same (the database
        unreachable for longer than the lease, the loop stalled), the work stops at once: another
        worker may own the job now, and every write of the job is fenced by the owner, so it
        cannot be written twice."""
        work = asyncio.create_task(self._process(job, owner, hand_off=hand_off))
        heartbeat = asyncio.create_task(self._heartbeat(job.id, owner, work))
        try:
            await work  # cancelling this worker (stop) cancels the work with it
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            log.warning("call %s: the lease was lost, the job's work stopped", job.call_id)
        finally:
            heartbeat.cancel()

    async def _process(
        self, job: Job, owner: str, *, hand_off: Callable[[Job], Awaitable[bool]] | None = None
    ) -> None:
        portal = await self.store.portals.get(job.portal_id)
        with correlated(f"{portal.domain if portal else job.portal_id}:{job.call_id}"):
            if portal is None or not portal.installed:
                await self._finish(job, owner, "failed", "portal is not installed")
                return
            try:
                while not job.terminal:
                    try:
                        next_state, values = await self.flow.run_stage(job, portal)
                    except Skip as exc:
                        await self._finish(job, owner, "skipped", str(exc))
                        return
                    except Retry as exc:
                        await self.store.jobs.release(
                            job.id,
                            owner,
                            next_run_at=exc.at,
                            record_polls=job.record_polls + 1,
                            reason=str(exc),
                        )
                        log.info("call %s: %s, next check in %.0f s", job.call_id, exc, exc.at - time.time())
                        return
                    except (Fail, PipelineError) as exc:
                        await self._finish(job, owner, "failed", str(exc) or type(exc).__name__)
                        return
                    except (asyncio.CancelledError, LeaseLost):
                        raise
                    except Exception as exc:
                        await self._failed_attempt(job, owner, exc)
                        return
                    values.setdefault("reason", None)
                    if not await self.store.jobs.save(job.id, owner, state=next_state, **values):
                        log.warning("call %s: lost the lease, another worker has it", job.call_id)
                        return
                    if self.metrics:
                        self.metrics.job_transitions.labels(next_state).inc()
                    fresh = await self.store.jobs.get(job.id)
                    if fresh is None:  # the portal was purged meanwhile
                        return
                    job = fresh
                    if hand_off is not None and not job.terminal and await hand_off(job):
                        return
                await self.store.jobs.release(job.id, owner)
                self.processed += 1
                log.info("call %s done", job.call_id)
            except LeaseLost:
                log.warning("call %s: lost the lease, another worker has it", job.call_id)

    async def _heartbeat(self, job_id: int, owner: str, work: asyncio.Task[None]) -> None:
        """Renew the lease every third of its length; a renewal that fails is tried again until
        the lease would run out, then the work is cancelled (someone else may take the job)."""
        lease_s = self.settings.job_lease_s
        interval = max(1.0, lease_s / 3)
        held_until = time.monotonic() + lease_s
        while not work.done():
            await asyncio.sleep(interval)
            try:
                if not await self.store.jobs.extend_lease(job_id, owner, lease_s):
                    break  # the row says someone else holds it (or the job is gone)
                held_until = time.monotonic() + lease_s
            except Exception as exc:
                log.warning("renewing the lease of job %s failed: %s", job_id, type(exc).__name__)
                if time.monotonic() + interval < held_until:
                    continue
                break
        if not work.done():
            work.cancel()

    async def _finish(self, job: Job, owner: str, state: str, reason: str) -> None:
        await self.store.jobs.release(job.id, owner, state=state, reason=reason[:2000])
        if self.metrics:
            self.metrics.job_transitions.labels(state).inc()
        self.processed += 1
        log.info("call %s %s: %s", job.call_id, state, reason)

    async def _failed_attempt(self, job: Job, owner: str, exc: Exception) -> None:
        attempts = job.attempts + 1
        reason = f"{type(exc).__name__}: {exc}"
        if is_permanent(exc) or attempts >= self.settings.job_max_attempts:
            log.warning("call %s failed for good after %d attempts: %s", job.call_id, attempts, reason)
            await self.store.jobs.save(job.id, owner, attempts=attempts)
            await self._finish(job, owner, "failed", reason)
            return
        delay = min(600.0, self.settings.job_retry_s * 2 ** (attempts - 1)) * (0.8 + 0.4 * random.random())
        log.warning("call %s attempt %d failed (%s), retry in %.0f s", job.call_id, attempts, reason, delay)
        await self.store.jobs.release(
            job.id, owner, attempts=attempts, next_run_at=time.time() + delay, reason=reason
        )
