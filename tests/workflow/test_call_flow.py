"""The call-finished flow end to end: the fake portal delivers ONVOXIMPLANTCALLEND, the real app
downloads the recording, the real model analyses it, and the comment lands on the deal."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from callcoach.app import _sweep
from tests.fakes.portal import FakePortal
from tests.helpers import RunningApp, StartApp, wait_for

pytestmark = pytest.mark.slow


async def _job(app: RunningApp, portal: FakePortal, call_id: str):  # type: ignore[no-untyped-def]
    p = await app.services.store.portals.by_member(portal.member_id)
    assert p is not None
    return await app.services.store.jobs.by_call(p.id, call_id)


async def _finished(app: RunningApp, portal: FakePortal, call_id: str) -> bool:
    job = await _job(app, portal, call_id)
    return job is not None and job.terminal


def _comments_on(portal: FakePortal, entity_type: str, entity_id: int) -> list[dict]:  # type: ignore[type-arg]
    return [
        c
        for c in portal.comments
        if str(c["ENTITY_TYPE"]) == entity_type and int(c["ENTITY_ID"]) == entity_id
    ]


async def test_call_end_gives_exactly_one_comment_on_the_deal_naming_the_objection(
    portal: FakePortal, start_app: StartApp, calls_dir: Path
) -> None:
    app = await start_app(portal)
    assert (await portal.install(app.install_url))["status"] == 200
    portal.add_user(7, "Андрей", [1])
    portal.add_deal(501, title="Склад для ООО Ромашка")
    portal.add_call(
        "call-dev01",
        recording=calls_dir / "dev01.stereo.mp3",
        user_id=7,
        duration=40,
        record_after_polls=1,  # the recording appears only on the second poll
        crm_activity_id=9001,
        bindings=[(3, 77), (2, 501)],
    )
    data = portal.call_end_event_data("call-dev01")
    first = await portal.send_bound_event("ONVOXIMPLANTCALLEND", data)
    assert [d["status"] for d in first] == [200]
    second = await portal.send_bound_event("ONVOXIMPLANTCALLEND", data)  # the same event again
    assert [d["status"] for d in second] == [200]

    await wait_for(lambda: _finished(app, portal, "call-dev01"), timeout=300)
    job = await _job(app, portal, "call-dev01")
    assert job.state == "done", job.reason
    assert job.record_polls >= 2

    comments = _comments_on(portal, "deal", 501)
    assert len(comments) == 1, portal.comments
    text = comments[0]["COMMENT"]
    assert "Высокая цена" in text
    assert "[b]" in text and "**" not in text  # BB-code, never Markdown
    assert f"{app.url}/calls/" in text  # the link to the call's full page
    assert portal.count("crm.timeline.comment.add") == 1
    # the call card got the layout and the transcript; the manager got a tip
    assert portal.transcriptions and portal.transcriptions[0]["CALL_ID"] == "call-dev01"
    assert portal.layout_blocks
    tips = [m for m in portal.bot_messages + portal.notifications if "Высокая цена" in str(m)]
    assert tips, "the manager got no tip"

    # the metrics saw it: the job states, each stage's duration, the REST calls by method
    async with aiohttp.ClientSession() as http, http.get(app.url + "/metrics") as resp:
        metrics = await resp.text()
    assert 'callcoach_jobs{state="done"} 1.0' in metrics
    assert 'callcoach_job_transitions_total{state="done"} 1.0' in metrics
    assert 'callcoach_stage_seconds_count{stage="fetching"}' in metrics
    # the lookups of a call and its write-back each go out as one batch (workflow/batched_io.py)
    assert 'callcoach_rest_calls_total{method="batch"}' in metrics
    assert 'callcoach_rest_calls_total{method="crm.timeline.comment.add"}' not in metrics
    assert "callcoach_queue_depth 0.0" in metrics


async def test_a_broken_recording_fails_that_call_and_the_others_go_on(
    portal: FakePortal, start_app: StartApp, calls_dir: Path
) -> None:
    app = await start_app(portal)
    await portal.install(app.install_url)
    portal.add_call("broken", recording=b"this is not audio at all", user_id=1, duration=30)
    portal.add_call(
        "good",
        recording=calls_dir / "dev02.mp3",
        user_id=1,
        duration=30,
        crm_entity_type="CONTACT",
        crm_entity_id=12,
    )
    for call_id in ("broken", "good"):
        await portal.send_event(app.events_url, "ONVOXIMPLANTCALLEND", portal.call_end_event_data(call_id))
    await wait_for(lambda: _finished(app, portal, "broken"), timeout=300)
    await wait_for(lambda: _finished(app, portal, "good"), timeout=300)
    broken = await _job(app, portal, "broken")
    good = await _job(app, portal, "good")
    assert broken.state == "failed" and broken.reason
    assert good.state == "done", good.reason
    assert len(_comments_on(portal, "contact", 12)) == 1


async def test_no_recording_after_the_last_check_is_skipped_with_a_reason(
    portal: FakePortal, start_app: StartApp
) -> None:
    app = await start_app(portal)
    await portal.install(app.install_url)
    portal.add_call("no-record", recording=None, user_id=1, duration=60)
    await portal.send_event(app.events_url, "ONVOXIMPLANTCALLEND", portal.call_end_event_data("no-record"))
    await wait_for(lambda: _finished(app, portal, "no-record"), timeout=60)
    job = await _job(app, portal, "no-record")
    assert job.state == "skipped" and "no recording" in (job.reason or "")
    assert portal.count("voximplant.statistic.get") == 5  # first look + 4 retries


async def test_short_calls_are_skipped(portal: FakePortal, start_app: StartApp) -> None:
    app = await start_app(portal)
    await portal.install(app.install_url)
    portal.add_call("short", recording=b"x", user_id=1, duration=4)
    await portal.send_event(app.events_url, "ONVOXIMPLANTCALLEND", portal.call_end_event_data("short"))
    await wait_for(lambda: _finished(app, portal, "short"), timeout=30)
    job = await _job(app, portal, "short")
    assert job.state == "skipped" and "shorter" in (job.reason or "")
    assert portal.downloads == []


async def test_a_lost_event_is_found_by_the_sweep(
    portal: FakePortal, start_app: StartApp, calls_dir: Path
) -> None:
    app = await start_app(portal)
    await portal.install(app.install_url)
    portal.add_deal(9)
    portal.add_call(
        "lost",
        recording=calls_dir / "dev03.mp3",
        user_id=1,
        duration=40,
        crm_activity_id=9300,
        bindings=[(2, 9)],
    )
    # no event is delivered: Bitrix24 lost it
    await _sweep(app.services)
    await wait_for(lambda: _finished(app, portal, "lost"), timeout=300)
    job = await _job(app, portal, "lost")
    assert job.state == "done" and job.source == "sweep", job.reason
    assert len(_comments_on(portal, "deal", 9)) == 1
    # a second sweep finds nothing new
    await _sweep(app.services)
    assert len(await app.services.store.jobs.list_jobs()) == 1


async def test_fifty_events_in_a_burst_give_fifty_comments_within_the_rate_limit(
    start_app: StartApp, calls_dir: Path
) -> None:
    rate, burst = 20.0, 20
    async with FakePortal(rate=rate, burst=burst) as portal:
        app = await start_app(portal, rest_rate=rate, rest_burst=burst, workers=8)
        await portal.install(app.install_url)
        recording = (calls_dir / "dev05.mp3").read_bytes()
        for n in range(50):
            portal.add_deal(1000 + n)
            portal.add_call(
                f"burst-{n}",
                recording=recording,
                user_id=1,
                duration=30,
                crm_activity_id=7000 + n,
                bindings=[(2, 1000 + n)],
            )
        for n in range(50):
            answer = await portal.send_event(
                app.events_url, "ONVOXIMPLANTCALLEND", portal.call_end_event_data(f"burst-{n}")
            )
            assert answer["status"] == 200

        async def all_done() -> bool:
            counts = await app.services.store.jobs.counts_by_state()
            return counts["done"] + counts["failed"] + counts["skipped"] == 50

        await wait_for(all_done, timeout=600, interval=0.5)
        assert (await app.services.store.jobs.counts_by_state())["done"] == 50
        assert len(portal.comments) == 50
        assert {int(c["ENTITY_ID"]) for c in portal.comments} == {1000 + n for n in range(50)}
        assert portal.rejected == []  # the client-side throttle kept us under the portal's limit
        assert portal.max_requests_in_window(1.0) <= burst + rate
