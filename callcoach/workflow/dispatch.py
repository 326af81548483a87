"""The web tier's side of the scaled-out mode (see ``celery_app``): instead of running jobs it
publishes them. Whatever is runnable in the database — a new call, a retry that came due, a job
whose worker died and whose lease ran out — is leased to the dispatcher and published to the
queue of its state's kind. A worker then takes the lease over (``storage/handoff.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from typing import Any

from callcoach.config import Settings
from callcoach.context import Services
from callcoach.storage import Store
from callcoach.storage.handoff import DISPATCHED
from callcoach.workflow.celery_app import Publisher, kind_of

log = logging.getLogger(__name__)

POLL_S = 1.0  # how often the database is asked for due jobs when nothing wakes the dispatcher


class Dispatcher:
    def __init__(self, settings: Settings, store: Store, publisher: Publisher) -> None:
        self.settings = settings
        self.store = store
        self.publisher = publisher
        self.owner = f"{DISPATCHED}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    def wake(self) -> None:
        self._wake.set()

    def state(self) -> dict[str, Any]:
        return {
            "running": self._task is not None and not self._task.done(),
            "mode": "broker",
            "published": self.published,
        }

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.get_running_loop().run_in_executor(None, self.publisher.close)

    async def dispatch_due(self) -> int:
        """Publish every job that is runnable now; returns how many."""
        count = 0
        while True:
            job = await self.store.jobs.claim(self.owner, self.settings.dispatch_lease_s)
            if job is None:
                return count
            try:
                await self.publisher.publish(job.id, kind_of(job.state))
            except Exception:
                # the broker is away: give the job back, so the next round tries again
                await self.store.jobs.release(job.id, self.owner)
                raise
            count += 1
            self.published += 1

    async def _loop(self) -> None:
        delay = POLL_S
        while True:
            self._wake.clear()
            try:
                await self.dispatch_due()
                delay = POLL_S
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("publishing jobs failed (%s: %s); trying again", type(exc).__name__, exc)
                delay = min(30.0, delay * 2)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)


async def start_dispatcher(services: Services) -> Dispatcher:
    """Wire the dispatcher into a web tier's services (intake and sweep wake it)."""
    dispatcher = Dispatcher(services.settings, services.store, Publisher(services.settings))
    services.runner = dispatcher
    services.intake.wake = dispatcher.wake
    await dispatcher.start()
    return dispatcher
