"""Scaled out (Celery on RabbitMQ, PostgreSQL, the REST budget in Redis): the web tier and two
workers, each a real process with the real model; one worker is killed with SIGKILL in the middle
of the run. Every call still gets exactly one comment, and the portal's limit is never exceeded."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.fakes.portal import FakePortal
from tests.scale.cluster import Cluster, services_missing, wait_terminal

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CALLS = 24


async def test_two_workers_one_killed_mid_run_every_call_one_comment_within_the_limit(
    tmp_path: Path, calls_dir: Path, models_dir: Path, analyzer: object
) -> None:
    missing = await services_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing} is not reachable, and CI must run the scale-out test")
        pytest.skip(f"{missing} is not reachable")
    rate, burst = 2.0, 10  # a small burst: three processes with a bucket each would overshoot it
    recordings = sorted(calls_dir.glob("dev0[2-9].mp3"))
    async with FakePortal(rate=rate, burst=burst) as portal:
        cluster = Cluster(portal, tmp_path, models_dir=models_dir, env_extra={"CALLCOACH_JOB_LEASE_S": "10"})
        try:
            await cluster.start_serve()
            doomed = cluster.start_worker("--concurrency", "2")
            cluster.start_worker("--concurrency", "2")
            assert (await portal.install(cluster.url + "/b24/install"))["status"] == 200
            for n in range(CALLS):
                portal.add_deal(3000 + n)
                portal.add_call(
                    f"scale-{n}",
                    recording=recordings[n % len(recordings)],
                    user_id=1,
                    duration=25,
                    crm_activity_id=8000 + n,
                    bindings=[(2, 3000 + n)],
                )
            before = len(portal.requests)
            for n in range(CALLS):
                answer = await portal.send_event(
                    cluster.url + "/b24/events",
                    "ONVOXIMPLANTCALLEND",
                    portal.call_end_event_data(f"scale-{n}"),
                )
                assert answer["status"] == 200
            assert cluster.store is not None

            # kill a worker while it is in the middle of analysing a call
            for _ in range(1200):
                if await cluster.held_by(doomed, ("fetching", "transcribing")):
                    break
                assert doomed.poll() is None, cluster.log("worker0")[-3000:]
                await asyncio.sleep(0.25)
            else:
                raise AssertionError("the worker never took a call:\n" + cluster.log("worker0")[-3000:])
            Cluster.kill(doomed)

            counts = await wait_terminal(cluster.store, CALLS, within_s=1200)
            logs = cluster.log("worker1")[-3000:]
            assert counts["done"] == CALLS, (counts, logs)
            per_deal = [
                sum(1 for c in portal.comments if int(c["ENTITY_ID"]) == 3000 + n) for n in range(CALLS)
            ]
            assert per_deal == [1] * CALLS, (per_deal, logs)
            assert portal.count("crm.timeline.comment.add") == CALLS  # none posted twice, none lost
            assert portal.rejected == []  # one budget for the three processes kept under the limit
            assert portal.max_requests_in_window(1.0) <= burst + rate
            per_call = (len(portal.requests) - before) / CALLS
            assert per_call <= 2.0, f"{per_call:.2f} REST requests per call"
        finally:
            await cluster.close()
