"""Recovery in seconds: the real ``callcoach serve`` is killed with SIGKILL at random points of
the flow, again and again, and started again each time. Every call still ends with exactly one
comment, and a job cut off by a kill is taken up again within a minute of the next start (with
the default lease: the new process sees the old owner is dead)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import pytest

from callcoach.storage import Store
from tests.fakes.portal import FakePortal
from tests.helpers import free_port, wait_for
from tests.workflow.serve_process import is_up, serve_env, start_serve

pytestmark = pytest.mark.slow

CALLS = ["dev01", "dev03", "dev06"]
States = Callable[[], Awaitable[dict[str, tuple[str, str | None]]]]
KILLS = 3


async def test_killed_at_random_points_every_call_gets_one_comment(
    portal: FakePortal, tmp_path: Path, calls_dir: Path, models_dir: Path, analyzer: object
) -> None:
    rng = random.Random(int(os.environ.get("CALLCOACH_CHAOS_SEED", "13")))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    env = serve_env(portal, port, data, models_dir, CALLCOACH_RECORD_RETRY_MINUTES="[0.02, 0.02]")
    log = tmp_path / "serve.log"
    proc = start_serve(env, log)
    store = await Store.open(f"sqlite+aiosqlite:///{data / 'callcoach.db'}")

    async def states() -> dict[str, tuple[str, str | None]]:
        p = await store.portals.by_member(portal.member_id)
        jobs = await store.jobs.list_jobs(p.id) if p else []
        return {j.call_id: (j.state, j.lease_owner) for j in jobs}

    try:
        await wait_for(lambda: is_up(url), timeout=120)
        assert (await portal.install(url + "/b24/install"))["status"] == 200
        for n, name in enumerate(CALLS):
            portal.add_deal(300 + n)
            portal.add_call(
                f"kill-{name}",
                recording=calls_dir / f"{name}.mp3",
                user_id=1,
                duration=40,
                crm_activity_id=3300 + n,
                bindings=[(2, 300 + n)],
            )
            await portal.send_event(
                url + "/b24/events", "ONVOXIMPLANTCALLEND", portal.call_end_event_data(f"kill-{name}")
            )
        recoveries: list[float] = []
        for _ in range(KILLS):
            await _sleep_random(rng)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            cut = {c: (s, o) for c, (s, o) in (await states()).items() if o and s not in ("done", "failed")}
            proc = start_serve(env, log)
            started = time.monotonic()
            await wait_for(lambda: is_up(url), timeout=120)
            if cut:  # a job cut off by the kill is claimed again by the new process
                await wait_for(partial(_taken_again, states, cut), timeout=60)
                recoveries.append(time.monotonic() - started)

        async def finished() -> bool:
            current = await states()
            return len(current) == len(CALLS) and all(s in ("done", "failed") for s, _ in current.values())

        await wait_for(finished, timeout=600, interval=0.5)
        final = await states()
        assert {s for s, _ in final.values()} == {"done"}, (final, log.read_text()[-3000:])
        for n, _ in enumerate(CALLS):
            comments = [c for c in portal.comments if int(c["ENTITY_ID"]) == 300 + n]
            assert len(comments) == 1, portal.comments
        assert all(r < 60 for r in recoveries), recoveries
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        await store.close()


async def _sleep_random(rng: random.Random) -> None:
    await asyncio.sleep(rng.uniform(1.0, 15.0))


async def _taken_again(states: States, cut: dict[str, tuple[str, str | None]]) -> bool:
    """Every job the kill cut off has moved on or has a new owner."""
    current = await states()
    return all(
        current[call_id][0] != state or current[call_id][1] not in (None, owner)
        for call_id, (state, owner) in cut.items()
    )
