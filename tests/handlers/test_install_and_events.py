"""Installing into a portal and receiving its events, through the real app on a real port."""

from __future__ import annotations

import os
import subprocess
import sys

import aiohttp

from tests.fakes.portal import FakePortal
from tests.helpers import StartApp, wait_for


async def test_install_stores_tokens_and_binds_events_once_even_when_installed_twice(
    portal: FakePortal, start_app: StartApp
) -> None:
    app = await start_app(portal)
    first = await portal.install(app.install_url)
    assert first["status"] == 200, first
    second = await portal.install(app.install_url)
    assert second["status"] == 200, second

    handlers = [(b["event"], b["handler"]) for b in portal.bindings]
    assert sorted(handlers) == [
        ("ONAPPUNINSTALL", app.events_url),
        ("ONVOXIMPLANTCALLEND", app.events_url),
    ]
    stored = await app.services.store.portals.by_member(portal.member_id)
    assert stored is not None and stored.installed
    assert stored.domain == portal.domain
    # the second install's tokens replaced the first's
    assert stored.access_token == portal.access_token
    assert stored.refresh_token == portal.refresh_token
    assert stored.application_token == portal.application_token


async def test_forged_event_is_refused_and_leaves_no_trace(portal: FakePortal, start_app: StartApp) -> None:
    app = await start_app(portal)
    await portal.install(app.install_url)
    portal.add_call("forged-1", recording=b"x", user_id=1, duration=30)
    data = portal.call_end_event_data("forged-1")

    wrong = await portal.send_event(
        app.events_url, "ONVOXIMPLANTCALLEND", data, application_token="not-the-token"
    )
    assert wrong["status"] == 401
    missing = await portal.send_event(app.events_url, "ONVOXIMPLANTCALLEND", data, application_token="")
    assert missing["status"] == 401

    store = app.services.store
    assert await store.events.count() == 0
    assert await store.jobs.queue_depth() == 0
    assert (await store.jobs.counts_by_state())["done"] == 0


async def test_event_from_unknown_portal_is_refused(portal: FakePortal, start_app: StartApp) -> None:
    app = await start_app(portal)  # never installed
    portal.add_call("c-1", recording=b"x", user_id=1, duration=30)
    answer = await portal.send_event(app.events_url, "ONVOXIMPLANTCALLEND", portal.call_end_event_data("c-1"))
    assert answer["status"] == 401
    assert await app.services.store.events.count() == 0


async def test_malformed_bodies_get_400_with_a_reason(portal: FakePortal, start_app: StartApp) -> None:
    app = await start_app(portal)
    await portal.install(app.install_url)
    async with aiohttp.ClientSession() as http:
        bad_json = await http.post(
            app.events_url, data=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert bad_json.status == 400
        assert "malformed" in (await bad_json.json())["error"]
        no_event = await http.post(app.events_url, data={"data[CALL_ID]": "1"})
        assert no_event.status == 400
        install_without_auth = await http.post(app.install_url, data={"event": "ONAPPINSTALL"})
        assert install_without_auth.status == 400


async def test_call_end_event_is_acknowledged_and_stored_durably(
    portal: FakePortal, start_app: StartApp
) -> None:
    app = await start_app(portal)
    await portal.install(app.install_url)
    portal.add_call("missed-1", recording=None, user_id=1, duration=0, failed_code=304)
    answer = await portal.send_event(
        app.events_url, "ONVOXIMPLANTCALLEND", portal.call_end_event_data("missed-1")
    )
    assert answer["status"] == 200
    store = app.services.store
    assert await store.events.count() == 1
    p = await store.portals.by_member(portal.member_id)
    assert p is not None
    job = await store.jobs.by_call(p.id, "missed-1")
    assert job is not None
    # a missed call is skipped with a reason, not analysed
    await wait_for(lambda: _state(app, p.id, "missed-1", "skipped"), timeout=20)
    job = await store.jobs.by_call(p.id, "missed-1")
    assert job is not None and "not connected" in (job.reason or "")


async def _state(app, portal_id: int, call_id: str, state: str) -> bool:  # type: ignore[no-untyped-def]
    job = await app.services.store.jobs.by_call(portal_id, call_id)
    return job is not None and job.state == state


async def test_json_event_bodies_are_accepted_too(portal: FakePortal, start_app: StartApp) -> None:
    app = await start_app(portal)
    await portal.install(app.install_url)
    portal.add_call("json-1", recording=None, user_id=1, duration=5)
    answer = await portal.send_event(
        app.events_url, "ONVOXIMPLANTCALLEND", portal.call_end_event_data("json-1"), json_body=True
    )
    assert answer["status"] == 200


async def test_uninstall_marks_portal_and_clean_removes_its_data(
    portal: FakePortal, start_app: StartApp
) -> None:
    app = await start_app(portal)
    await portal.install(app.install_url)
    store = app.services.store
    answer = await portal.uninstall(app.events_url, clean=False)
    assert answer["status"] == 200
    p = await store.portals.by_member(portal.member_id)
    assert p is not None and p.status == "uninstalled" and p.access_token == ""
    # after uninstall its events are refused
    portal.add_call("late-1", recording=None, user_id=1, duration=5)
    late = await portal.send_event(
        app.events_url, "ONVOXIMPLANTCALLEND", portal.call_end_event_data("late-1")
    )
    assert late["status"] == 401

    await portal.install(app.install_url)
    answer = await portal.uninstall(app.events_url, clean=True)
    assert answer["status"] == 200
    assert await store.portals.by_member(portal.member_id) is None


async def test_health_and_metrics(portal: FakePortal, start_app: StartApp) -> None:
    app = await start_app(portal)
    async with aiohttp.ClientSession() as http:
        live = await http.get(app.url + "/livez")
        assert live.status == 200
        health = await http.get(app.url + "/healthz")
        body = await health.json()
        assert health.status == 200, body
        assert body["database"] == "ok" and body["queue_depth"] == 0
        metrics = await http.get(app.url + "/metrics")
        text = await metrics.text()
        assert "callcoach_queue_depth" in text and "callcoach_jobs" in text


def test_serve_with_a_wrong_setting_stops_with_one_line_naming_the_variable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "CALLCOACH_PORT": "not-a-port", "CALLCOACH_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "callcoach.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "CALLCOACH_PORT" in lines[0], done.stderr
