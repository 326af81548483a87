"""The dashboard of the real app, installed into the fake portal, as the portal's people open it:
each sees the calls the rights rule lets him see, managers by their names, sign-in checked by the
portal with the person's own AUTH_ID; and the grouping of new objections kept off the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import pytest
from yarl import URL

from callcoach.handlers.dashboard import SESSION_COOKIE
from callcoach.pipeline.models import ProposedCategory
from callcoach.report.links import sign_call_link
from callcoach.workflow.assemble import make_flow
from tests.fakes.portal import FakePortal
from tests.helpers import NoSpeechAnalyzer, RunningApp, StartApp, add_analysed_call

ADMIN, HEAD, MANAGER, OTHER, SUPPORT, SHADY = 1, 5, 7, 8, 9, 11
GONE = 77  # a manager the portal no longer knows
SHADY_NAME = "<img src=x onerror=alert(1)>"
DENIED = "другого сотрудника"


def org_chart(portal: FakePortal) -> None:
    """Sales (head 5) with managers 7 and 8; support with 9 and 11. Admin 1 heads the company."""
    portal.add_department(10, "Продажи", head_user_id=HEAD, parent=1)
    portal.add_department(20, "Поддержка", head_user_id=None, parent=1)
    portal.add_user(HEAD, "Анна Руководитель", [10])
    portal.add_user(MANAGER, "Иван Петров", [10])
    portal.add_user(OTHER, "Пётр Сидоров", [10])
    portal.add_user(SUPPORT, "Ольга Смирнова", [20])
    portal.add_user(SHADY, SHADY_NAME, [20], last_name="Хакер")


@dataclass
class Org:
    app: RunningApp
    portal: FakePortal
    analyzer: NoSpeechAnalyzer
    jobs: dict[str, int]  # call id -> job id


@pytest.fixture
async def org(portal: FakePortal, start_light_app: StartApp) -> Org:
    org_chart(portal)
    analyzer = NoSpeechAnalyzer()
    app = await start_light_app(portal, analyzer=analyzer)
    answer = await portal.install(app.install_url)
    assert answer["status"] == 200, answer
    said = {
        "CALL-7": (MANAGER, "Ивану"),
        "CALL-8": (OTHER, "Петру"),
        "CALL-9": (SUPPORT, "Ольге"),
        "CALL-11": (SHADY, "Хакеру"),
        "CALL-77": (GONE, "Уволенному"),
    }
    jobs = {
        call: await add_analysed_call(app.services.store, portal, call, who, f"{to}: это дорого")
        for call, (who, to) in said.items()
    }
    return Org(app, portal, analyzer, jobs)


def portal_form(portal: FakePortal, auth_id: str) -> dict[str, str]:
    """What Bitrix24 posts to the app's page when a person opens it."""
    return {
        "AUTH_ID": auth_id, "AUTH_EXPIRES": "3600", "REFRESH_ID": "r", "member_id": portal.member_id,
        "DOMAIN": portal.domain, "PROTOCOL": "1", "LANG": "ru", "APP_SID": "sid", "PLACEMENT": "DEFAULT",
    }  # fmt: skip


@dataclass
class Person:
    http: aiohttp.ClientSession
    url: str
    page: str  # the dashboard as it opened

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.url + path) as resp:
            return resp.status, await resp.text()

    async def report(self) -> dict:  # type: ignore[type-arg]
        async with self.http.get(self.url + "/api/report.json") as resp:
            assert resp.status == 200
            return await resp.json()  # type: ignore[no-any-return]


@asynccontextmanager
async def opened_by(org: Org, user_id: int) -> AsyncIterator[Person]:
    """The person opens the app inside the portal: the portal posts his own fresh AUTH_ID."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        form = portal_form(org.portal, org.portal.user_auth_id(user_id))
        async with http.post(org.app.url + "/", data=form) as resp:
            page = await resp.text()
            assert resp.status == 200, page
            assert SESSION_COOKIE in resp.cookies
        yield Person(http, org.app.url, page)


def call_ids(report: dict) -> set[str]:  # type: ignore[type-arg]
    return {c["id"] for c in report["calls"]}


async def test_a_manager_sees_only_his_own_calls(org: Org) -> None:
    async with opened_by(org, MANAGER) as ivan:
        assert "Иван Петров" in ivan.page and "CALL-7" in ivan.page
        assert "CALL-8" not in ivan.page and "Петру: это дорого" not in ivan.page
        assert call_ids(await ivan.report()) == {"CALL-7"}
        status, page = await ivan.get(f"/calls/{org.jobs['CALL-7']}")
        assert status == 200 and "Ивану: это дорого" in page
        for other in ("CALL-8", "CALL-9"):
            status, page = await ivan.get(f"/calls/{org.jobs[other]}")
            assert status == 403 and "Нет доступа" in page and DENIED in page
            assert "это дорого" not in page
    # the signed link of the timeline comment still opens the call for whoever holds it
    settings = org.app.settings
    link = sign_call_link(settings.signing_key(), org.app.url, org.jobs["CALL-8"], 600)
    async with aiohttp.ClientSession() as anyone, anyone.get(link) as resp:
        assert resp.status == 200 and "Петру: это дорого" in await resp.text()


async def test_a_head_sees_his_department_and_an_admin_everything(org: Org) -> None:
    async with opened_by(org, HEAD) as anna:
        assert call_ids(await anna.report()) == {"CALL-7", "CALL-8"}
        assert (await anna.get(f"/calls/{org.jobs['CALL-8']}"))[0] == 200
        status, page = await anna.get(f"/calls/{org.jobs['CALL-9']}")  # support is not hers
        assert status == 403 and DENIED in page
    async with opened_by(org, SUPPORT) as olga:
        assert call_ids(await olga.report()) == {"CALL-9"}
    async with opened_by(org, ADMIN) as admin:
        assert call_ids(await admin.report()) == set(org.jobs)
        assert (await admin.get(f"/calls/{org.jobs['CALL-9']}"))[0] == 200
    # one org chart per portal, cached across people and pages (the bot shares it)
    assert org.portal.count("user.get") == 1


async def test_managers_are_shown_by_name_and_names_stay_text(org: Org) -> None:
    async with opened_by(org, ADMIN) as admin:
        managers = {m["key"]: m["name"] for m in (await admin.report())["managers"]}
        assert managers == {
            f"id{MANAGER}": "Иван Петров",
            f"id{OTHER}": "Пётр Сидоров",
            f"id{SUPPORT}": "Ольга Смирнова",
            f"id{SHADY}": f"{SHADY_NAME} Хакер",
            f"id{GONE}": f"#{GONE}",  # unknown to the portal: its id
        }
        assert "Пётр Сидоров" in admin.page and "Админ Портала" in admin.page
        assert SHADY_NAME not in admin.page  # in the page only escaped
        status, page = await admin.get(f"/calls/{org.jobs['CALL-11']}")
        assert status == 200 and SHADY_NAME not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
        status, page = await admin.get(f"/calls/{org.jobs['CALL-7']}")
        assert "Иван Петров" in page


@pytest.mark.browser
async def test_names_in_the_managers_table_as_a_browser_shows_them(org: Org) -> None:
    from tests.report.browser import chromium

    async with opened_by(org, HEAD) as anna:
        cookie = anna.http.cookie_jar.filter_cookies(URL(org.app.url))[SESSION_COOKIE].value

    def look() -> tuple[list[str], int]:
        with chromium() as driver:
            driver.get(org.app.url + "/livez")
            driver.add_cookie({"name": SESSION_COOKIE, "value": cookie, "path": "/"})
            driver.get(org.app.url + "/")
            assert driver.execute_script("return document.body.getAttribute('data-ready')") == "1"
            rows = driver.find_elements("css selector", "#managers-body tr td.name")
            images = driver.execute_script("return document.querySelectorAll('img').length")
            return [r.text for r in rows], int(images)

    names, images = await asyncio.to_thread(look)
    assert sorted(names) == ["Иван Петров", "Пётр Сидоров"] and images == 0


async def test_without_the_portal_names_fall_back_and_rights_fail_closed(org: Org) -> None:
    async with opened_by(org, HEAD) as anna, opened_by(org, ADMIN) as admin:
        assert call_ids(await anna.report()) == {"CALL-7", "CALL-8"}
        row = await org.app.services.store.portals.by_member(org.portal.member_id)
        assert row is not None
        org.app.services.directory.forget(row.id)  # the cached chart is gone (as after 5 minutes)
        await org.portal.close()
        assert call_ids(await anna.report()) == set()  # who is in her department is unknown now
        report = await admin.report()  # the portal said she is an admin when she signed in
        assert call_ids(report) == set(org.jobs)
        assert {m["name"] for m in report["managers"]} == {"#7", "#8", "#9", "#11", "#77"}


async def test_sign_in_is_checked_by_the_portal_with_the_persons_own_token(org: Org) -> None:
    portal, url = org.portal, org.app.url
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/", data=portal_form(portal, "forged-token")) as resp:
            assert resp.status == 401 and "Сессия Bitrix24 недействительна" in await resp.text()
            assert SESSION_COOKIE not in resp.cookies
        expired = portal.user_auth_id(MANAGER)
        refreshes = portal.refresh_count
        portal.expire_access_tokens()
        async with http.post(url + "/", data=portal_form(portal, expired)) as resp:
            assert resp.status == 401
        assert portal.refresh_count == refreshes  # a user's token is never "refreshed" with the app's
        # the portal failing is not a refusal: the person is told to retry
        portal.fail_next("user.current", "INTERNAL_SERVER_ERROR", 500, times=5)
        async with http.post(url + "/", data=portal_form(portal, portal.user_auth_id(MANAGER))) as resp:
            assert resp.status == 503 and "Портал недоступен" in await resp.text()
        # the checks went through the app's REST client: they are in its metrics
        async with http.get(url + "/metrics") as resp:
            metrics = await resp.text()
        assert 'callcoach_rest_calls_total{method="user.current"}' in metrics
        assert 'method="user.current"' in metrics.split("callcoach_rest_errors_total", 1)[1]


async def test_unreachable_portal_gives_a_clear_page(org: Org) -> None:
    auth_id = org.portal.user_auth_id(MANAGER)
    await org.portal.close()  # the portal is gone from the network
    async with aiohttp.ClientSession() as http:
        async with http.post(org.app.url + "/", data=portal_form(org.portal, auth_id)) as resp:
            assert resp.status == 503
            text = await resp.text()
            assert "Портал недоступен" in text and "Повторите позже" in text


async def test_an_inbound_webhook_portal_admits_nobody(portal: FakePortal, start_light_app: StartApp) -> None:
    # the webhook answers as its owner whatever token is sent: it cannot tell who opened the page
    app = await start_light_app(portal, webhook_url=portal.webhook_url)
    host = portal.webhook_url.split("/")[2]
    form = {**portal_form(portal, "anything"), "member_id": f"webhook:{host}", "DOMAIN": host}
    async with aiohttp.ClientSession() as http, http.post(app.url + "/", data=form) as resp:
        assert resp.status == 403 and "Портал не распознан" in await resp.text()
        assert SESSION_COOKIE not in resp.cookies
    assert portal.count("user.current") == 0


async def test_grouping_new_objections_keeps_the_app_answering(org: Org) -> None:
    threads: list[str] = []

    def slow_grouping(quotes: list[str]) -> list[ProposedCategory]:  # embeddings take a while
        threads.append(threading.current_thread().name)
        time.sleep(1.5)
        return [ProposedCategory(name="Нужен сертификат ISO", code="iso", examples=quotes, size=len(quotes))]

    org.analyzer.propose = slow_grouping
    store = org.app.services.store
    row = await store.portals.by_member(org.portal.member_id)
    assert row is not None
    await store.categories.add_candidates(row.id, None, ["Нужен ISO 9001", "Где ваш сертификат ISO?"])
    flow = make_flow(org.app.services)
    assert flow.d.group_proposals is not None
    grouping = asyncio.create_task(flow.d.group_proposals(row))
    async with aiohttp.ClientSession() as http:
        await asyncio.sleep(0.2)
        slowest = 0.0
        while not grouping.done():
            started = time.monotonic()
            async with http.get(org.app.url + "/livez") as resp:
                assert resp.status == 200
            slowest = max(slowest, time.monotonic() - started)
            await asyncio.sleep(0.05)
    await grouping
    assert threads and threads[0].startswith("analysis")  # the analysis executor, not the loop
    assert slowest < 0.5
    async with opened_by(org, HEAD) as anna:
        assert "Нужен сертификат ISO" in anna.page and "Где ваш сертификат ISO?" in anna.page
