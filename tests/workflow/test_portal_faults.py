"""A bad day at the portal: a fifth of the REST requests answered 503 QUERY_LIMIT_EXCEEDED or
500, some answered only after the client gave up, the access token expiring under way. Every call
still ends with exactly one comment and one tip; a call whose portal keeps failing ends ``failed``
with the reason, and /metrics counts it. The faults come from the fake portal's switch
(``tests/fakes/faults.py``)."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.faults import FaultPlan
from tests.fakes.portal import FakePortal
from tests.helpers import RunningApp, StartApp, wait_for

pytestmark = pytest.mark.slow

# Quick retries so that the test waits seconds, not minutes; the shape is the production one.
FAST_RETRIES = dict(job_retry_s=0.5, job_max_attempts=8, rest_timeout_s=1.5)


async def _jobs(app: RunningApp, portal: FakePortal) -> dict[str, tuple[str, str | None]]:
    p = await app.services.store.portals.by_member(portal.member_id)
    assert p is not None
    return {j.call_id: (j.state, j.reason) for j in await app.services.store.jobs.list_jobs(p.id)}


async def _all_finished(app: RunningApp, portal: FakePortal, n: int) -> bool:
    states = await _jobs(app, portal)
    return len(states) == n and all(s in ("done", "failed", "skipped") for s, _ in states.values())


async def test_every_call_gets_one_comment_and_one_tip_through_faults(
    portal: FakePortal, start_app: StartApp, calls_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = await start_app(portal, **FAST_RETRIES)
    assert (await portal.install(app.install_url))["status"] == 200
    portal.add_user(7, "Андрей", [1])
    calls = ["dev01", "dev04"]
    for n, name in enumerate(calls):
        portal.add_deal(600 + n)
        portal.add_call(
            f"faulty-{name}",
            recording=calls_dir / f"{name}.mp3",
            user_id=7,
            duration=40,
            crm_activity_id=6600 + n,
            bindings=[(2, 600 + n)],
        )
    portal.faults.enable(
        FaultPlan(error_rate=0.2, timeout_rate=0.05, timeout_s=2.5, expire_every=12, seed=13)
    )
    for name in calls:
        answer = await portal.send_event(
            app.events_url, "ONVOXIMPLANTCALLEND", portal.call_end_event_data(f"faulty-{name}")
        )
        assert answer["status"] == 200
    await wait_for(lambda: _all_finished(app, portal, len(calls)), timeout=600, interval=0.5)
    portal.faults.disable()

    states = await _jobs(app, portal)
    assert {s for s, _ in states.values()} == {"done"}, states
    assert sum(portal.faults.injected.values()) > 0, "no fault was injected"
    for n, _ in enumerate(calls):
        comments = [c for c in portal.comments if int(c["ENTITY_ID"]) == 600 + n]
        assert len(comments) == 1, (portal.faults.injected, portal.comments)
    tips = [m for m in portal.bot_messages + portal.notifications if "Разбор звонка" in str(m)]
    assert len(tips) == len(calls), (portal.faults.injected, tips)
    # the retries kept to the portal's limit: nothing beyond the injected 503s was refused
    assert portal.rejected == []
    # every failure was logged, and no secret with it
    secrets = [portal.access_token, portal.refresh_token, portal.application_token, portal.client_secret]
    assert "INTERNAL_SERVER_ERROR" in caplog.text or "QUERY_LIMIT_EXCEEDED" in caplog.text
    for secret in secrets:
        assert secret not in caplog.text


async def test_a_call_whose_portal_keeps_failing_ends_failed_with_the_reason(
    portal: FakePortal, start_app: StartApp, calls_dir: Path
) -> None:
    app = await start_app(portal, job_retry_s=0.2, job_max_attempts=3)
    assert (await portal.install(app.install_url))["status"] == 200
    portal.add_call("doomed", recording=calls_dir / "dev02.mp3", user_id=1, duration=40)
    portal.faults.enable(FaultPlan(error_rate=1.0, seed=1))  # every REST call: 503 or 500
    await portal.send_event(app.events_url, "ONVOXIMPLANTCALLEND", portal.call_end_event_data("doomed"))
    await wait_for(lambda: _all_finished(app, portal, 1), timeout=300, interval=0.3)
    state, reason = (await _jobs(app, portal))["doomed"]
    assert state == "failed"
    assert reason and ("INTERNAL_SERVER_ERROR" in reason or "QUERY_LIMIT_EXCEEDED" in reason), reason
    async with aiohttp.ClientSession() as http, http.get(app.url + "/metrics") as resp:
        metrics = await resp.text()
    assert 'callcoach_job_transitions_total{state="failed"} 1.0' in metrics
    assert 'callcoach_jobs{state="failed"} 1.0' in metrics


async def test_a_write_back_whose_answer_is_lost_sends_neither_comment_nor_tip_twice(
    portal: FakePortal, start_app: StartApp, calls_dir: Path
) -> None:
    # The write-back batch (comment + tip) runs on the portal, but its answer comes after the
    # client's timeout: the app cannot tell whether it ran, and tries the job again.
    app = await start_app(portal, **FAST_RETRIES)
    assert (await portal.install(app.install_url))["status"] == 200
    portal.add_user(7, "Андрей", [1])
    portal.add_deal(700)
    portal.add_call(
        "lost-answer",
        recording=calls_dir / "dev01.mp3",
        user_id=7,
        duration=40,
        crm_activity_id=7700,
        bindings=[(2, 700)],
    )
    portal.faults.enable(
        # the write-back's answer names its steps (``comment``, or ``c0_comment`` when batched)
        FaultPlan(late_methods=("batch",), late_if_answer_has='comment"', timeout_s=2.5)
    )
    answer = await portal.send_event(
        app.events_url, "ONVOXIMPLANTCALLEND", portal.call_end_event_data("lost-answer")
    )
    assert answer["status"] == 200
    await wait_for(lambda: _all_finished(app, portal, 1), timeout=900, interval=0.5)
    portal.faults.disable()

    assert portal.faults.injected["late batch"] == 1, "the write-back's answer was not delayed"
    states = await _jobs(app, portal)
    assert states["lost-answer"][0] == "done", states
    assert len([c for c in portal.comments if int(c["ENTITY_ID"]) == 700]) == 1, portal.comments
    tips = [m for m in portal.bot_messages + portal.notifications if "Разбор звонка" in str(m)]
    assert len(tips) == 1, tips
