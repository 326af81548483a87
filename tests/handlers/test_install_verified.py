"""Installing as the docs describe, both forms, and forged installs refused: through the real app
on a real port against the fake portal and its OAuth server.

Docs: settings/app-installation/installation-finish.md, settings/oauth/simple-way.md,
api-reference/common/events/on-app-install.md, settings/oauth/auto-renewal.md.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.portal import FakePortal
from tests.helpers import RunningApp, StartApp, wait_for


@pytest.fixture
async def forger(portal: FakePortal) -> AsyncIterator[FakePortal]:
    """Another portal on the same OAuth server (as every portal is on oauth.bitrix.info): its
    tokens are real, they just belong to it and not to the victim."""
    async with FakePortal(
        oauth_server=portal, client_id=portal.client_id, client_secret=portal.client_secret
    ) as f:
        yield f


async def _stored(app: RunningApp, portal: FakePortal) -> Any:
    return await app.services.store.portals.by_member(portal.member_id)


async def test_frame_install_answers_the_install_page_and_events_flow_after_install_finish(
    portal: FakePortal, start_light_app: StartApp
) -> None:
    app = await start_light_app(portal)
    # the app bound nothing yet and the portal holds events back until installFinish
    portal.add_call("early", recording=None, user_id=1, duration=0, failed_code=304)
    assert await portal.send_bound_event("ONVOXIMPLANTCALLEND", portal.call_end_event_data("early")) == []

    page = await portal.install_in_frame(app.install_url)
    assert page["status"] == 200, page["text"]
    assert page["finished"], "the install page must load the BX24 library and call BX24.installFinish()"
    text = page["text"]
    assert "callcoach установлен" in text and "ONVOXIMPLANTCALLEND" in text
    assert text.index("BX24.init") < text.index("BX24.installFinish()")
    assert portal.app_installed and portal.install_finish_calls == 1

    stored = await _stored(app, portal)
    assert stored is not None and stored.installed and stored.domain == portal.domain
    assert stored.application_token == portal.application_token
    # the refresh token of the request was spent on the check: the fresh pair is stored
    assert stored.refresh_token == portal.refresh_token and stored.access_token == portal.access_token

    again = await portal.install_in_frame(app.install_url)  # the admin opens it once more
    assert again["status"] == 200 and again["finished"]
    handlers = sorted((b["event"], b["handler"]) for b in portal.bindings)
    assert handlers == [("ONAPPUNINSTALL", app.events_url), ("ONVOXIMPLANTCALLEND", app.events_url)]

    portal.add_call("after", recording=None, user_id=1, duration=0, failed_code=304)
    sent = await portal.send_bound_event("ONVOXIMPLANTCALLEND", portal.call_end_event_data("after"))
    assert [d["status"] for d in sent] == [200]


async def test_api_only_install_is_installed_at_once(portal: FakePortal, start_light_app: StartApp) -> None:
    app = await start_light_app(portal)
    answer = await portal.install(app.install_url)
    assert answer["status"] == 200, answer
    assert portal.app_installed
    assert (await _stored(app, portal)).installed
    # a GET of the install path (opened by hand) explains itself and installs nothing
    async with aiohttp.ClientSession() as http, http.get(app.install_url) as resp:
        assert resp.status == 405 and "путь первоначальной установки" in (await resp.text()).lower()


async def test_forged_installs_of_either_form_store_nothing(
    portal: FakePortal, forger: FakePortal, start_light_app: StartApp
) -> None:
    app = await start_light_app(portal)
    assert (await portal.install(app.install_url))["status"] == 200
    before = await _stored(app, portal)
    bindings_before = list(portal.bindings)

    attempts = [
        # the forger's own, real tokens with the victim's member_id
        await forger.install(app.install_url, auth={"member_id": portal.member_id}),
        # ... and with the victim's domain and endpoint too
        await forger.install(
            app.install_url,
            auth={
                "member_id": portal.member_id,
                "domain": portal.domain,
                "client_endpoint": portal.client_endpoint,
            },
        ),
        # made-up tokens naming the victim throughout
        await portal.install(app.install_url, auth={"refresh_token": "made-up", "access_token": "made-up"}),
    ]
    assert [a["status"] for a in attempts] == [403, 403, 401], attempts
    assert all("error" in a["text"] for a in attempts)
    assert "member_id" in attempts[0]["text"]

    frames = [
        await forger.install_in_frame(app.install_url, form={"member_id": portal.member_id}),
        await forger.install_in_frame(
            app.install_url, form={"member_id": portal.member_id}, query={"DOMAIN": portal.domain}
        ),
        await portal.install_in_frame(app.install_url, form={"REFRESH_ID": "made-up"}),
    ]
    assert [f["status"] for f in frames] == [403, 403, 401]
    assert not any(f["finished"] for f in frames)
    assert all("ничего не сохранено" in f["text"] for f in frames)

    after = await _stored(app, portal)
    assert after == before  # tokens, endpoints, application token: all the victim's still
    assert await app.services.store.portals.by_member(forger.member_id) is None
    assert portal.bindings == bindings_before
    assert len(await app.services.store.portals.installed()) == 1


async def test_an_install_is_refused_when_the_app_cannot_check_it(
    portal: FakePortal, start_light_app: StartApp
) -> None:
    app = await start_light_app(portal, client_secret="")
    answer = await portal.install(app.install_url)
    assert answer["status"] == 403 and "CALLCOACH_CLIENT_SECRET" in answer["text"]
    assert await _stored(app, portal) is None


async def test_the_dashboard_shows_nothing_to_a_forger(
    portal: FakePortal, forger: FakePortal, start_light_app: StartApp
) -> None:
    app = await start_light_app(portal)
    assert (await portal.install(app.install_url))["status"] == 200
    await forger.install(app.install_url, auth={"member_id": portal.member_id})  # refused
    forger.add_user(1, "Злоумышленник", [1], is_admin=True)
    async with aiohttp.ClientSession() as http:
        # the forger's own token, the victim's member_id and domain: the victim's portal (the
        # stored endpoint) is asked and does not know the token
        own_token = forger.user_auth_id(1)
        as_victim = await http.post(
            app.url + "/",
            params={"DOMAIN": portal.domain, "PROTOCOL": "0"},
            data={"AUTH_ID": own_token, "member_id": portal.member_id},
        )
        assert as_victim.status == 401
        # the victim's member_id with the forger's domain: the domain is not the stored one
        other_domain = await http.post(
            app.url + "/",
            params={"DOMAIN": forger.domain},
            data={"AUTH_ID": own_token, "member_id": portal.member_id},
        )
        assert other_domain.status == 403
        # the forger's own member_id: never installed
        own = await http.post(
            app.url + "/",
            params={"DOMAIN": forger.domain},
            data={"AUTH_ID": own_token, "member_id": forger.member_id},
        )
        assert own.status == 403
        for resp in (as_victim, other_domain, own):
            assert "callcoach_session" not in resp.cookies
            assert portal.domain not in (await resp.text()).replace("Портал не распознан", "")
    # the token was checked at the stored portal's own endpoint (which refused it), never at the
    # forger's portal, whatever DOMAIN the request named
    assert forger.count("user.current") == 0


@pytest.mark.slow
async def test_after_a_forged_install_the_victims_next_call_is_analysed(
    portal: FakePortal, forger: FakePortal, start_app: StartApp, calls_dir: Path
) -> None:
    app = await start_app(portal)
    assert (await portal.install(app.install_url))["status"] == 200
    forged = await forger.install(app.install_url, auth={"member_id": portal.member_id})
    assert forged["status"] == 403
    portal.add_deal(601)
    portal.add_call(
        "after-forgery",
        recording=calls_dir / "dev01.stereo.mp3",
        user_id=1,
        duration=40,
        crm_activity_id=9601,
        bindings=[(2, 601)],
    )
    sent = await portal.send_bound_event("ONVOXIMPLANTCALLEND", portal.call_end_event_data("after-forgery"))
    assert [d["status"] for d in sent] == [200]
    stored = await _stored(app, portal)

    async def done() -> bool:
        job = await app.services.store.jobs.by_call(stored.id, "after-forgery")
        return job is not None and job.terminal

    await wait_for(done, timeout=300)
    job = await app.services.store.jobs.by_call(stored.id, "after-forgery")
    assert job.state == "done", job.reason
    assert [c for c in portal.comments if c["ENTITY_ID"] == 601]
    assert not re.search(r"\*\*|__", portal.comments[-1]["COMMENT"])


async def test_a_portal_on_a_private_address_is_not_contacted_unless_allowed(
    portal: FakePortal, start_light_app: StartApp
) -> None:
    # The fake portal listens on 127.0.0.1, as an on-premises Bitrix24 inside the network would
    # on a private address. The install is verified at the OAuth server, configured and so
    # trusted (named here by another name for the same fake, as oauth.bitrix.info is another
    # host than a portal); the portal itself gets no request, and the install page says why.
    oauth_url = portal.oauth_url.replace("127.0.0.1", "localhost")
    app = await start_light_app(portal, allow_private_portals=False, oauth_url=oauth_url)
    page = await portal.install_in_frame(app.install_url)
    assert page["status"] == 200, page["text"]
    assert "private address" in page["text"] and "CALLCOACH_ALLOW_PRIVATE_PORTALS" in page["text"]
    assert portal.bindings == [] and portal.requests == []
