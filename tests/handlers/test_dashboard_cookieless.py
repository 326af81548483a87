"""The dashboard in a browser that drops the third-party cookie of the portal's iframe (the
contract's note on the app page): the session rides in the page's own links and the period form,
or in the X-Callcoach-Session header, and the rights rule still holds."""

from __future__ import annotations

import re
from urllib.parse import unquote

import aiohttp

from callcoach.handlers.dashboard import SESSION_HEADER
from tests.handlers.test_dashboard import DENIED, MANAGER, Org, org, portal_form  # noqa: F401


async def test_the_session_travels_in_links_when_cookies_are_dropped(org: Org) -> None:  # noqa: F811
    # a jar that keeps nothing: what a browser blocking third-party cookies does
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        form = portal_form(org.portal, org.portal.user_auth_id(MANAGER))
        async with http.post(org.app.url + "/", data=form) as resp:
            page = await resp.text()
            assert resp.status == 200, page
        link = re.search(r'calls/(\d+)\?s=([^"&]+)', page)
        assert link, "call links carry the session"
        own = org.jobs["CALL-7"]
        async with http.get(f"{org.app.url}/calls/{own}?s={link.group(2)}") as resp:
            assert resp.status == 200 and "Ивану: это дорого" in await resp.text()
        async with http.get(f"{org.app.url}/calls/{org.jobs['CALL-9']}?s={link.group(2)}") as resp:
            assert resp.status == 403 and DENIED in await resp.text()  # still only his own calls
        assert 'name="s"' in page  # the period form keeps the session too
        token = unquote(link.group(2))
        async with http.get(org.app.url + "/api/report.json", headers={SESSION_HEADER: token}) as resp:
            assert resp.status == 200
            calls = {c["id"] for c in (await resp.json())["calls"]}
            assert calls == {"CALL-7"}
        async with http.get(org.app.url + "/api/report.json") as resp:
            assert resp.status == 401  # no cookie, no header, no parameter: nobody
        async with http.get(org.app.url + "/calls/" + str(own) + "?s=forged.token") as resp:
            assert resp.status == 401
