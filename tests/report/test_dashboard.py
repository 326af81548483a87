"""The live dashboard on a real port: portal auth, session cookie, signed call links, and the
rights rule (a manager sees his own calls, a head his departments', an admin all)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from callcoach.b24.client import B24Client
from callcoach.handlers.dashboard import (
    SESSION_COOKIE,
    PortalRef,
    PortalUnavailable,
    UserRef,
    Viewer,
    setup_dashboard_routes,
    verify_user_via_rest,
)
from callcoach.report.data import CallRecord, ReportInput
from callcoach.report.links import sign_call_link, sign_session
from callcoach.rights import OrgChart, access_for
from tests.report.conftest import sample_records

KEY = b"test-signing-key-0123456789abcdef"
GOOD_TOKEN = "user-token-ok"  # Ольга Смирнова (5), head of the sales department
MANAGER_TOKEN = "manager-token-ok"  # Андрей Петров (1), a manager in it
DOWN_TOKEN = "portal-down"
# the sample calls are by managers 1 and 2; both work in department 10, which user 5 heads
CHART = OrgChart(
    admins=frozenset(),
    names={1: "Андрей Петров", 2: "Мария Иванова", 5: "Ольга Смирнова"},
    departments_of={1: (10,), 2: (10,), 5: (10,)},
    heads={10: 5},
    parents={},
)


@dataclass
class MemorySource:
    """Two installed portals; member-a owns the sample calls. Tokens are checked against a table."""

    portals: dict[str, PortalRef] = field(
        default_factory=lambda: {
            "member-a": PortalRef("member-a", "a.bitrix24.ru", "https://a.bitrix24.ru/rest/"),
            "member-b": PortalRef("member-b", "b.bitrix24.ru", "https://b.bitrix24.ru/rest/"),
        }
    )
    tokens: dict[tuple[str, str], UserRef] = field(
        default_factory=lambda: {
            ("member-a", GOOD_TOKEN): UserRef(5, "Ольга Смирнова", False),
            ("member-a", MANAGER_TOKEN): UserRef(1, "Андрей Петров", False),
        }
    )
    records: list[CallRecord] = field(default_factory=sample_records)
    asked: list[tuple[str, date | None, date | None]] = field(default_factory=list)

    async def portal(self, member_id: str) -> PortalRef | None:
        return self.portals.get(member_id)

    async def verify_user(self, portal: PortalRef, auth_id: str) -> UserRef | None:
        if auth_id == DOWN_TOKEN:
            raise PortalUnavailable("connection refused")
        return self.tokens.get((portal.member_id, auth_id))

    async def report_input(self, viewer: Viewer, date_from: date | None, date_to: date | None) -> ReportInput:
        self.asked.append((viewer.member_id, date_from, date_to))
        access = access_for(CHART, viewer.user_id, is_admin=viewer.is_admin)
        mine = [r for r in self.records if r.portal == viewer.member_id and access.can_see(r.manager_id)]
        return ReportInput(records=mine, period_from=date_from, period_to=date_to, title="Звонки портала")

    async def call_record(self, job_id: str) -> tuple[str, CallRecord] | None:
        for r in self.records:
            if r.job_id == job_id:
                return r.portal or "", r
        return None

    async def can_see(self, viewer: Viewer, manager_id: int | None) -> bool:
        return access_for(CHART, viewer.user_id, is_admin=viewer.is_admin).can_see(manager_id)


def form(
    member_id: str = "member-a", domain: str = "a.bitrix24.ru", auth: str = GOOD_TOKEN
) -> dict[str, str]:
    return {
        "AUTH_ID": auth, "AUTH_EXPIRES": "3600", "REFRESH_ID": "r", "member_id": member_id, "DOMAIN": domain,
        "PROTOCOL": "1", "LANG": "ru", "APP_SID": "sid", "PLACEMENT": "DEFAULT", "PLACEMENT_OPTIONS": "{}",
    }  # fmt: skip


async def start(source: MemorySource, public_url: str = "http://127.0.0.1") -> TestServer:
    app = web.Application()
    setup_dashboard_routes(app, source, KEY, public_url=public_url)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    return server


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    srv = await start(MemorySource())
    yield srv
    await srv.close()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    # unsafe: keep cookies for an IP host (127.0.0.1)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def test_no_auth_is_401(server: TestServer, client: aiohttp.ClientSession) -> None:
    for path in ("/", "/calls/100"):
        async with client.get(server.make_url(path)) as resp:
            assert resp.status == 401
            text = await resp.text()
            assert "Нужен вход через Bitrix24" in text and "Андрей" not in text
    async with client.get(server.make_url("/api/report.json")) as resp:
        assert resp.status == 401


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        (form(member_id="unknown"), 403, "Портал не распознан"),
        (form(domain="evil.bitrix24.ru"), 403, "Портал не распознан"),
        (form(member_id="member-b", domain="b.bitrix24.ru"), 401, "Сессия Bitrix24 недействительна"),
        (form(auth="forged-token"), 401, "Сессия Bitrix24 недействительна"),
        ({"member_id": "member-a", "DOMAIN": "a.bitrix24.ru"}, 403, "Неполные данные портала"),
    ],
)
async def test_bad_portal_auth_is_refused(
    server: TestServer, client: aiohttp.ClientSession, fields: dict[str, str], status: int, message: str
) -> None:
    """An unknown portal is forbidden; a session token the portal does not confirm is no sign-in."""
    async with client.post(server.make_url("/"), data=fields) as resp:
        assert resp.status == status
        text = await resp.text()
        assert message in text and "dev01" not in text
        assert SESSION_COOKIE not in resp.cookies


async def test_valid_portal_post_sets_session_and_serves(
    server: TestServer, client: aiohttp.ClientSession
) -> None:
    async with client.post(server.make_url("/"), data=form()) as resp:
        assert resp.status == 200
        text = await resp.text()
        assert "Звонки портала" in text and "dev01" in text and "Ольга Смирнова" in text
        cookie = resp.cookies[SESSION_COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]
        assert 0 < int(cookie["max-age"]) <= 3600
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    # the iframe's later GETs ride on the cookie
    async with client.get(server.make_url("/?from=2025-03-04&to=2025-03-05")) as resp:
        assert resp.status == 200
    async with client.get(server.make_url("/api/report.json")) as resp:
        assert resp.status == 200
        data = await resp.json()
        assert data["totals"]["calls"] == 14
        # the link carries the session too: inside the portal's iframe the cookie may be dropped
        link = next(c for c in data["calls"] if c["id"] == "dev01")["page_url"]
        assert link.startswith("calls/100?s=")
    async with client.get(server.make_url("/calls/100")) as resp:
        assert resp.status == 200
        assert "Это очень дорого" in await resp.text()
    async with client.get(server.make_url("/calls/999")) as resp:
        assert resp.status == 404
    async with client.get(server.make_url("/?from=2025-13-01")) as resp:
        assert resp.status == 400


async def test_manager_sees_only_his_own_calls(server: TestServer, client: aiohttp.ClientSession) -> None:
    async with client.post(server.make_url("/"), data=form(auth=MANAGER_TOKEN)) as resp:
        assert resp.status == 200
        text = await resp.text()
        assert "Андрей Петров" in text and "dev01" in text
        assert "dev07" not in text and "Мария Иванова" not in text  # manager 2's calls and name
    async with client.get(server.make_url("/api/report.json")) as resp:
        data = await resp.json()
        assert data["totals"]["calls"] == 7
        assert {m["name"] for m in data["managers"]} == {"Андрей Петров"}
    async with client.get(server.make_url("/calls/100")) as resp:  # dev01: his own
        assert resp.status == 200
    async with client.get(server.make_url("/calls/106")) as resp:  # dev07: manager 2's
        assert resp.status == 403
        text = await resp.text()
        assert "Нет доступа" in text and "другого сотрудника" in text and "dev07" not in text
    # a signed link (the timeline comment's) still opens the call for whoever holds it
    async with client.get(sign_call_link(KEY, str(server.make_url("")), "106", ttl_s=600)) as resp:
        assert resp.status == 200
        assert "Звонок dev07" in await resp.text()


async def test_admin_session_sees_everything(server: TestServer) -> None:
    admin = sign_session(KEY, member_id="member-a", user_id=99, is_admin=True, ttl_s=600)
    async with aiohttp.ClientSession(cookies={SESSION_COOKIE: admin}) as c:
        async with c.get(server.make_url("/api/report.json")) as resp:
            assert (await resp.json())["totals"]["calls"] == 14
        async with c.get(server.make_url("/calls/106")) as resp:
            assert resp.status == 200


async def test_unreachable_portal_is_503(server: TestServer, client: aiohttp.ClientSession) -> None:
    async with client.post(server.make_url("/"), data=form(auth=DOWN_TOKEN)) as resp:
        assert resp.status == 503
        assert "Портал недоступен" in await resp.text()
        assert SESSION_COOKIE not in resp.cookies


async def test_get_with_query_params_works_too(server: TestServer, client: aiohttp.ClientSession) -> None:
    async with client.get(server.make_url("/"), params=form()) as resp:
        assert resp.status == 200
        assert SESSION_COOKIE in resp.cookies


async def test_forged_or_foreign_cookie(server: TestServer) -> None:
    now = time.time()
    forged = sign_session(b"not-the-key", member_id="member-a", user_id=5, ttl_s=600, now=now)
    expired = sign_session(KEY, member_id="member-a", user_id=5, ttl_s=60, now=now - 3600)
    foreign = sign_session(KEY, member_id="member-b", user_id=9, ttl_s=600, now=now)
    async with aiohttp.ClientSession(cookies={SESSION_COOKIE: forged}) as c:
        async with c.get(server.make_url("/")) as resp:
            assert resp.status == 401
    async with aiohttp.ClientSession(cookies={SESSION_COOKIE: expired}) as c:
        async with c.get(server.make_url("/")) as resp:
            assert resp.status == 401
    async with aiohttp.ClientSession(cookies={SESSION_COOKIE: foreign}) as c:
        async with c.get(server.make_url("/calls/100")) as resp:  # a call of member-a
            assert resp.status == 403
        async with c.get(server.make_url("/api/report.json")) as resp:  # its own portal: no calls
            assert (await resp.json())["totals"]["calls"] == 0


async def test_signed_call_links(server: TestServer, client: aiohttp.ClientSession) -> None:
    good = sign_call_link(KEY, str(server.make_url("")), "100", ttl_s=600)
    async with client.get(good) as resp:
        assert resp.status == 200
        text = await resp.text()
        assert "Звонок dev01" in text and "<mark>" in text
        assert resp.headers["Referrer-Policy"] == "no-referrer"
    bad_sig = good[: good.rindex("sig=") + 4] + "AAAA"
    expired = sign_call_link(KEY, str(server.make_url("")), "100", ttl_s=600, now=time.time() - 3600)
    other_job = good.replace("/calls/100?", "/calls/101?")
    other_key = sign_call_link(b"other", str(server.make_url("")), "100", ttl_s=600)
    for url in (bad_sig, expired, other_job, other_key):
        async with client.get(url) as resp:
            assert resp.status == 403, url
            assert "Ссылка недействительна" in await resp.text()
    missing = sign_call_link(KEY, str(server.make_url("")), "999", ttl_s=600)
    async with client.get(missing) as resp:
        assert resp.status == 404


async def test_https_cookie_is_samesite_none_secure(client: aiohttp.ClientSession) -> None:
    srv = await start(MemorySource(), public_url="https://callcoach.example.com")
    try:
        async with client.post(srv.make_url("/"), data=form()) as resp:
            assert resp.status == 200
            header = resp.headers["Set-Cookie"]
            assert "SameSite=None" in header and "Secure" in header and "HttpOnly" in header
    finally:
        await srv.close()


async def test_user_verified_by_fake_portal_user_current(client: aiohttp.ClientSession) -> None:
    fake_portal = pytest.importorskip("tests.fakes.portal", reason="tests/fakes/portal not available")
    async with fake_portal.FakePortal() as portal, aiohttp.ClientSession() as rest:

        class PortalBacked(MemorySource):
            async def verify_user(self, ref: PortalRef, auth_id: str) -> UserRef | None:
                user_client = B24Client.for_token(rest, ref.client_endpoint, auth_id, max_retries=1)
                return await verify_user_via_rest(user_client)

        source = PortalBacked(
            portals={portal.member_id: PortalRef(portal.member_id, portal.domain, portal.client_endpoint)},
            records=[r.model_copy(update={"portal": portal.member_id}) for r in sample_records()],
        )
        srv = await start(source)
        try:
            fields = form(member_id=portal.member_id, domain=portal.domain, auth=portal.access_token)
            async with client.post(srv.make_url("/"), data=fields) as resp:
                assert resp.status == 200
                assert "Админ Портала" in await resp.text()
            assert portal.count("user.current") == 1
            fields["AUTH_ID"] = "forged-" + portal.access_token
            async with client.post(srv.make_url("/"), data=fields) as resp:
                assert resp.status == 401
            portal.expire_access_tokens()
            fields["AUTH_ID"] = portal.access_token
            async with client.post(srv.make_url("/"), data=fields) as resp:
                assert resp.status == 401  # an expired user token is no session
            assert portal.refresh_count == 0  # and nobody tried to refresh it
        finally:
            await srv.close()
