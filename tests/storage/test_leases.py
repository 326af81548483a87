"""Short job leases: a dead process's jobs come back at once, idle workers sleep until a lease runs
out, and a worker that lost its lease stops before it writes anything."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path
from typing import Any

from callcoach.config import Settings
from callcoach.storage import Store
from callcoach.storage.portals import Portal
from callcoach.workflow.runner import JobRunner
from tests.helpers import install_portal, wait_for


async def _store(tmp_path: Path) -> tuple[Store, Portal]:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    portal = await install_portal(store, "m-lease")
    return store, portal


def _settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(data_dir=tmp_path, _env_file=None, **values)  # type: ignore[call-arg]


def _dead_pid() -> int:
    pid = 4_000_000  # near the top of the pid range: the first free one from here
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        pid += 1


async def test_jobs_of_a_dead_process_on_this_host_are_freed_at_start(tmp_path: Path) -> None:
    store, portal = await _store(tmp_path)
    for call in ("dead", "alive", "elsewhere"):
        await store.jobs.enqueue(portal.id, call, {})
    host = socket.gethostname()
    owners = {
        "dead": f"{host}-{_dead_pid()}-abc123-w0",
        "alive": f"{host}-{os.getppid()}-abc123-w1",  # pytest's parent lives
        "elsewhere": f"other-host-{_dead_pid()}-abc123-w0",  # not ours to judge: its lease decides
    }
    for call, owner in owners.items():
        job = await store.jobs.by_call(portal.id, call)
        assert job is not None
        await store.jobs.save(job.id, lease_owner=owner, lease_until=time.time() + 300)
    runner = JobRunner(_settings(tmp_path, workers=1), store, flow=None)  # type: ignore[arg-type]
    assert await store.jobs.release_leases_of(runner._owner_died) == 1
    freed = await store.jobs.by_call(portal.id, "dead")
    assert freed is not None and freed.lease_owner is None
    claimed = await store.jobs.claim("new-owner", 30)
    assert claimed is not None and claimed.call_id == "dead"
    assert await store.jobs.claim("another", 30) is None  # the others stay leased
    await store.close()


async def test_idle_workers_sleep_until_a_lease_runs_out(tmp_path: Path) -> None:
    store, portal = await _store(tmp_path)
    await store.jobs.enqueue(portal.id, "c1", {})
    before = time.time()
    job = await store.jobs.claim("w", 30)
    assert job is not None
    wake = await store.jobs.next_wakeup()
    assert wake is not None and wake >= before + 29  # not "now": nothing to poll for meanwhile
    await store.close()


class BlockingFlow:
    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.cancelled = False

    async def run_stage(self, job: Any, portal: Any) -> tuple[str, dict[str, Any]]:
        self.entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return "done", {}


async def test_a_worker_that_lost_its_lease_stops_at_once(tmp_path: Path) -> None:
    store, portal = await _store(tmp_path)
    await store.jobs.enqueue(portal.id, "c1", {})
    flow = BlockingFlow()
    runner = JobRunner(_settings(tmp_path, workers=1, job_lease_s=10), store, flow)  # type: ignore[arg-type]
    await runner.start()
    try:
        await asyncio.wait_for(flow.entered.wait(), 30)
        job = await store.jobs.by_call(portal.id, "c1")
        assert job is not None and job.lease_owner
        # another worker takes the job over (as after a stall longer than the lease)
        assert await store.jobs.save(job.id, lease_owner="thief", lease_until=time.time() + 300)
        await wait_for(lambda: flow.cancelled, timeout=10)  # the next heartbeat sees it
        after = await store.jobs.by_call(portal.id, "c1")
        assert after is not None and after.lease_owner == "thief" and after.state == "queued"
    finally:
        await runner.stop()
        await store.close()
