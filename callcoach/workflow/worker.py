"""``callcoach worker``: one process of the scaled-out mode (see ``celery_app``). It holds the
models and runs call jobs that the web tier published; start as many as the hardware allows, on
as many hosts as needed (each GPU host: ``--queues analysis``; portal I/O: ``--queues io``).

Celery runs the tasks on a thread pool; every task hands its job to one event loop that lives on
a thread of its own and holds what a job needs (database pool, HTTP session, portal clients on
the Redis-shared REST budget, the write-back batcher, the loaded analyzer). Several tasks at once
overlap: one call's download and write-back with another's analysis, and the analyzer overlaps
decoding and text analysis with speech recognition (``Analyzer`` locks each model stage, not the
whole call).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Coroutine, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from callcoach.config import ConfigError, Settings
from callcoach.storage import Job
from callcoach.storage.handoff import DISPATCHED, take_over
from callcoach.workflow.celery_app import (
    KINDS,
    TASK,
    Publisher,
    check_scale_out,
    kind_of,
    queue_name,
    states_of,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


class WorkerRuntime:
    """The asyncio side of a worker process: start once, then ``run_job`` from any thread."""

    def __init__(
        self,
        settings: Settings,
        *,
        kinds: Sequence[str] = KINDS,
        analyzer: Any = None,
        analysis_threads: int = 2,
    ) -> None:
        self.settings = settings
        self.kinds = tuple(kinds)
        self.analyzer = analyzer
        self.analysis_threads = max(1, analysis_threads)
        self.publisher = Publisher(settings)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="callcoach-loop", daemon=True)
        self.services: Any = None
        self.runner: Any = None
        self._retention: asyncio.Task[None] | None = None
        self.ran = 0

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> None:
        self._thread.start()
        self._call(self._start())

    async def _start(self) -> None:
        """The worker's composition root: the shared services, the manager's message, the flow."""
        from callcoach.bot.notify import notify_commands, notify_manager
        from callcoach.services import build_services
        from callcoach.workflow.assemble import make_flow
        from callcoach.workflow.runner import JobRunner

        # decoding and text analysis of one call overlap speech recognition of another
        services = await build_services(
            self.settings, analyzer=self.analyzer, analysis_threads=self.analysis_threads
        )
        services.notify = notify_manager
        services.notify_commands = notify_commands
        started = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(services.executor, services.analyzer.load)
        log.info("models loaded in %.1f s", time.monotonic() - started)
        self.runner = JobRunner(self.settings, services.store, make_flow(services), services.metrics)
        self.services = services
        self._retention = asyncio.create_task(self._remove_old_audio(), name="audio-retention")

    async def _remove_old_audio(self) -> None:
        """Recordings live on the worker that fetched them: this worker keeps its own disk to
        CALLCOACH_KEEP_AUDIO_DAYS (the web tier's retention clears the database's paths)."""
        while True:
            cutoff = time.time() - self.settings.keep_audio_days * 86400
            removed = await asyncio.to_thread(_remove_files_before, self.settings.audio_dir, cutoff)
            if removed:
                log.info("retention removed %d recordings from this worker", removed)
            await asyncio.sleep(6 * 3600)

    def run_job(self, job_id: int, kind: str) -> str:
        """The Celery task's body: run what this kind of worker does for the job."""
        future = asyncio.run_coroutine_threadsafe(self._run(job_id, kind), self._loop)
        # below the broker's consumer timeout, or the broker closes the channel under us
        limit = self.settings.broker_consumer_timeout_s * 0.9
        try:
            return future.result(limit)
        except concurrent.futures.TimeoutError:
            future.cancel()  # the lease runs out and the job is published again
            log.error("job %s ran over %.0f s and was cut off", job_id, limit)
            return "timed out"

    async def _run(self, job_id: int, kind: str) -> str:
        owner = f"{self.runner.owner_prefix}-{uuid.uuid4().hex[:6]}"
        job = await take_over(
            self.services.store.db, job_id, owner, self.settings.job_lease_s, states_of(kind)
        )
        if job is None:  # finished, held by a live worker, or not due: the database says so
            log.debug("job %s: nothing for a %s worker now", job_id, kind)
            return "skipped"
        await self.runner.process(job, owner, hand_off=partial(self._hand_off, kind, owner))
        self.ran += 1
        return "ran"

    async def _hand_off(self, kind: str, owner: str, job: Job) -> bool:
        """After a stage: a job whose next stage is a kind this worker does not take goes to that
        kind's queue; otherwise this worker goes on with it (no hop, no wait in a queue)."""
        next_kind = kind_of(job.state)
        if next_kind == kind or next_kind in self.kinds:
            return False
        store = self.services.store
        lease = time.time() + self.settings.dispatch_lease_s
        if not await store.jobs.save(job.id, owner, lease_owner=f"{DISPATCHED}{owner}", lease_until=lease):
            return True  # the lease was lost: someone else has the job
        try:
            await self.publisher.publish(job.id, next_kind)
        except Exception as exc:  # the web tier's dispatcher publishes it instead
            log.warning("publishing job %s failed (%s); the dispatcher will", job.id, exc)
            await store.jobs.save(job.id, lease_owner=None, lease_until=None)
        return True

    def stop(self) -> None:
        from callcoach.services import stop_services

        if self.services is not None:
            if self._retention is not None:
                self._loop.call_soon_threadsafe(self._retention.cancel)
            self._call(stop_services(self.services), timeout=60)
        self.publisher.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


def _remove_files_before(folder: Path, cutoff: float) -> int:
    removed = 0
    for path in folder.glob("*/*") if folder.is_dir() else []:
        with contextlib.suppress(OSError):
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "worker", help="run call jobs published by the web tier (needs CALLCOACH_BROKER_URL)"
    )
    parser.add_argument(
        "--queues",
        default=",".join(KINDS),
        help="which kinds of work to take: analysis (GPU), io (portal writes), or both (default)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=4, help="jobs at once (they overlap I/O with analysis)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from callcoach.logs import setup_logging

    setup_logging(settings.log_level, as_json=settings.log_json)
    if not settings.broker_url:
        raise ConfigError("CALLCOACH_BROKER_URL: required by `callcoach worker` (amqp://… of RabbitMQ)")
    check_scale_out(settings)
    kinds = [k.strip() for k in str(args.queues).split(",") if k.strip()]
    if not kinds or any(k not in KINDS for k in kinds):
        raise ConfigError(f"--queues: expected a comma-separated subset of {', '.join(KINDS)}")
    serve_worker(settings, kinds, int(args.concurrency))
    return 0


def serve_worker(settings: Settings, kinds: Sequence[str], concurrency: int, *, analyzer: Any = None) -> None:
    """Load the models, then consume ``kinds`` until a signal stops the worker (Celery's warm
    shutdown: running calls finish; a second signal or SIGKILL leaves them to other workers)."""
    concurrency = max(1, concurrency)
    # as many analysis threads as jobs: one in Whisper (batched with the others on a GPU), the
    # rest decoding or in the text models
    runtime = WorkerRuntime(settings, kinds=kinds, analyzer=analyzer, analysis_threads=concurrency)
    runtime.start()
    app = runtime.publisher.app

    @app.task(name=TASK, acks_late=True, reject_on_worker_lost=True)
    def run_job(job_id: int, kind: str) -> str:
        return runtime.run_job(int(job_id), str(kind))

    name = f"{settings.namespace}-{socket.gethostname()}-{os.getpid()}@%h"
    try:
        app.worker_main(
            [
                "worker",
                "--pool=threads",
                f"--concurrency={concurrency}",
                f"--queues={','.join(queue_name(settings, k) for k in kinds)}",
                f"--loglevel={settings.log_level}",
                f"--hostname={name}",
                "--without-mingle",
                "--without-gossip",
            ]
        )
    finally:
        runtime.stop()
