"""A crash loses nothing and duplicates nothing: the real ``callcoach serve`` process is killed
with SIGKILL in the middle of a job and started again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest

from callcoach.storage import Store
from tests.fakes.portal import FakePortal
from tests.helpers import free_port, wait_for
from tests.workflow.serve_process import is_up, serve_env, start_serve

pytestmark = pytest.mark.slow


async def test_killed_mid_job_and_restarted_still_one_comment(
    portal: FakePortal, tmp_path: Path, calls_dir: Path, models_dir: Path, analyzer: object
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    env = serve_env(portal, port, data, models_dir, CALLCOACH_JOB_LEASE_S="10")
    log = tmp_path / "serve.log"
    proc = start_serve(env, log)
    store = await Store.open(f"sqlite+aiosqlite:///{data / 'callcoach.db'}")
    try:
        await wait_for(lambda: is_up(url), timeout=120)
        assert (await portal.install(url + "/b24/install"))["status"] == 200
        portal.add_deal(70)
        portal.add_call(
            "crash-1",
            recording=calls_dir / "dev07.mp3",
            user_id=1,
            duration=40,
            crm_activity_id=7070,
            bindings=[(2, 70)],
        )
        await portal.send_event(
            url + "/b24/events", "ONVOXIMPLANTCALLEND", portal.call_end_event_data("crash-1")
        )

        async def job_state() -> str | None:
            p = await store.portals.by_member(portal.member_id)
            job = await store.jobs.by_call(p.id, "crash-1") if p else None
            return job.state if job else None

        await wait_for(
            lambda: _in(job_state(), ("transcribing", "analysing", "posting", "done")), timeout=120
        )
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        state_at_kill = await job_state()

        proc = start_serve(env, log)
        await wait_for(lambda: is_up(url), timeout=120)
        await wait_for(lambda: _in(job_state(), ("done", "failed")), timeout=300)
        assert await job_state() == "done", log.read_text()[-3000:]
        assert len([c for c in portal.comments if int(c["ENTITY_ID"]) == 70]) == 1, (
            state_at_kill,
            portal.comments,
        )
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        await store.close()


async def _in(value: object, choices: tuple[str, ...]) -> bool:
    if asyncio.iscoroutine(value):
        value = await value
    return value in choices
