"""The client and the fake portal against what the REST docs say, page by page (the doc path is
named in each test)."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest

from callcoach.b24 import B24Client
from callcoach.b24.download import not_audio_reason
from callcoach.b24.errors import NotAudio, OperationTimeLimit, ValidationFailed
from tests.fakes.portal import FakePortal


def client_of(session: aiohttp.ClientSession, portal: FakePortal, **kw: object) -> B24Client:
    return B24Client.for_portal(
        session,
        portal.credentials(),
        client_id=portal.client_id,
        client_secret=portal.client_secret,
        oauth_url=portal.oauth_url,
        allow_private_portals=True,  # the fake portal is on 127.0.0.1
        backoff_base_s=0.01,
        **kw,  # type: ignore[arg-type]
    )


def departments(portal: FakePortal, count: int) -> None:
    for n in range(2, count + 1):
        portal.add_department(n, f"Отдел {n}", parent=1)


async def test_department_get_takes_only_its_documented_parameters(
    portal: FakePortal, session: aiohttp.ClientSession
) -> None:
    """api-reference/departments/department-get.md: top-level filters, sort/order strings, START."""
    departments(portal, 120)
    client = client_of(session, portal)
    # a filter object, >ID and lowercase start are not department.get's: ignored, page one again
    ignored = await client.call("department.get", {"filter": {">ID": 60}, "start": 50})
    assert [d["ID"] for d in ignored][:2] == ["1", "2"] and len(ignored) == 50
    second = await client.call_full("department.get", {"sort": "ID", "order": "ASC", "START": 50})
    assert second.result[0]["ID"] == "51" and second.total == 120 and second.next == 100
    by_parent = await client.call("department.get", {"PARENT": 1, "sort": "NAME", "order": "DESC"})
    assert len(by_parent) == 50 and by_parent[0]["NAME"] == "Отдел 99"


async def test_every_department_in_a_bounded_number_of_calls(
    portal: FakePortal, session: aiohttp.ClientSession
) -> None:
    departments(portal, 120)
    client = client_of(session, portal)
    rows = await client.list_pages(
        "department.get", {"sort": "ID", "order": "ASC"}, start_keys=("START", "start")
    )
    assert sorted(int(r["ID"]) for r in rows) == list(range(1, 121))
    assert portal.count("department.get") == 3  # 50 + 50 + 20
    assert portal.http_count() == 2  # page one tells the total; pages two and three in one batch


async def test_a_list_that_ignores_its_paging_key_is_read_once_not_forever(
    portal: FakePortal, session: aiohttp.ClientSession
) -> None:
    """A portal answering page one whatever the paging key: both readers stop on a page with
    nothing new (the bug was a loop that never ended)."""
    departments(portal, 120)
    client = client_of(session, portal)
    wrong_key = await client.list_pages("department.get", {}, start_keys=("offset",))
    assert len(wrong_key) == 50 and portal.count("department.get") <= 3  # page one, once more, stop
    by_id = await client.list_all("department.get")  # filter[>ID] + start=-1: not this method's
    assert len(by_id) == 50


async def test_user_get_pages_by_start_with_filter(
    portal: FakePortal, session: aiohttp.ClientSession
) -> None:
    """api-reference/user/user-get.md: FILTER with prefixes, sort/order strings, start."""
    for n in range(2, 131):
        portal.add_user(n, f"Сотрудник{n}", [2 if n % 2 else 3])
    client = client_of(session, portal)
    users = await client.list_pages("user.get", {"sort": "ID", "order": "ASC"})
    assert len(users) == 130 and portal.count("user.get") == 3
    odd = await client.list_pages("user.get", {"FILTER": {"UF_DEPARTMENT": 2, ">ID": 100}})
    assert [int(u["ID"]) for u in odd] == list(range(101, 131, 2))
    newest = await client.call("user.get", {"sort": "ID", "order": "DESC"})
    assert newest[0]["ID"] == "130"


async def test_refresh_only_for_tokens_the_oauth_server_issued(
    portal: FakePortal, session: aiohttp.ClientSession
) -> None:
    """settings/oauth/auto-renewal.md: the answer names the token's portal; made-up tokens fail."""
    async with (
        FakePortal(
            oauth_server=portal, client_id=portal.client_id, client_secret=portal.client_secret
        ) as other,
        session.get(
            portal.oauth_url,
            params={
                "grant_type": "refresh_token",
                "client_id": portal.client_id,
                "client_secret": portal.client_secret,
                "refresh_token": other.refresh_token,
            },
        ) as resp,
    ):
        body = await resp.json()
        assert resp.status == 200 and body["member_id"] == other.member_id
        assert (
            body["client_endpoint"] == other.client_endpoint and body["refresh_token"] == other.refresh_token
        )
    async with session.get(
        portal.oauth_url,
        params={
            "grant_type": "refresh_token",
            "client_id": portal.client_id,
            "client_secret": "x",
            "refresh_token": "y",
        },
    ) as resp:
        assert resp.status == 401 and (await resp.json())["error"] == "invalid_client"
    async with session.get(
        portal.oauth_url,
        params={
            "grant_type": "refresh_token",
            "client_id": portal.client_id,
            "client_secret": portal.client_secret,
            "refresh_token": "made-up",
        },
    ) as resp:
        assert resp.status == 400 and (await resp.json())["error"] == "invalid_grant"


async def test_download_without_the_headers_gets_an_nginx_page_and_the_client_sends_them(
    portal: FakePortal, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """settings/how-to-call-rest-api/general-principles.md: User-Agent, Accept, Accept-Language,
    Referer on the GET of a signed link, else a file name and an nginx 404 page."""
    audio = b"ID3" + bytes(range(256)) * 100
    portal.add_call("rec", recording=audio, user_id=1, duration=60)
    client = client_of(session, portal)
    row = (await client.call("voximplant.statistic.get", {"FILTER": {"CALL_ID": "rec"}}))[0]
    url = (await client.call("disk.file.get", {"id": row["RECORD_FILE_ID"]}))["DOWNLOAD_URL"]
    assert "/rest/download.json?" in url and "token=disk%7C" in url and "auth=" in url

    async with aiohttp.ClientSession() as bare, bare.get(url) as resp:  # aiohttp's own User-Agent
        body = await resp.read()
        assert resp.status == 200 and "rec.mp3" in resp.headers["Content-Disposition"]
        assert b"404 Not Found" in body and b"nginx" in body
    assert portal.refused_downloads and "Referer" in portal.refused_downloads[0]["missing"]
    assert not_audio_reason(resp.headers["Content-Type"], body) is not None
    assert not_audio_reason("application/octet-stream", body) is not None  # by its first bytes

    dest = tmp_path / "rec.mp3"
    size = await client.download(
        url, dest, max_bytes=10**6, allowed_hosts=[portal.domain], referer=f"https://{portal.domain}/"
    )
    assert size == len(audio) and dest.read_bytes() == audio and len(portal.refused_downloads) == 1


async def test_a_page_instead_of_audio_is_refused_and_nothing_is_kept(
    portal: FakePortal, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    portal.add_call("html", recording=b"<html><body>404</body></html>", user_id=1, duration=60)
    client = client_of(session, portal)
    row = (await client.call("voximplant.statistic.get", {"FILTER": {"CALL_ID": "html"}}))[0]
    url = (await client.call("disk.file.get", {"id": row["RECORD_FILE_ID"]}))["DOWNLOAD_URL"]
    with pytest.raises(NotAudio, match="page or text"):
        await client.download(url, tmp_path / "x.mp3", max_bytes=10**6, allowed_hosts=[portal.domain])
    assert list(tmp_path.iterdir()) == []


async def test_error_core_is_a_validation_error_and_not_retried(
    portal: FakePortal, session: aiohttp.ClientSession
) -> None:
    client = client_of(session, portal)
    with pytest.raises(ValidationFailed, match="CALL_ID should be set"):
        await client.call("telephony.call.attachTranscription", {"MESSAGES": []}, idempotent=True)
    assert portal.count("telephony.call.attachtranscription") == 1


async def test_operating_reset_comes_from_the_last_successful_response(
    portal: FakePortal, session: aiohttp.ClientSession
) -> None:
    """settings/performance/limits.md: time.operating_reset_at of the last successful answer."""
    client = client_of(session, portal, max_wait_s=5.0)
    first = await client.call_full("profile")
    assert first.time["operating_reset_at"] > time.time()
    # the error's own time block says "in an hour"; the last success says now + 600 s: the wait
    # is capped by max_wait_s either way, so check the value the client chose
    portal.fail_next("profile", "OPERATION_TIME_LIMIT", 429, reset_in=3600)
    chosen: list[float] = []
    real_wait = client._limit_wait

    def spy(exc, attempt):  # type: ignore[no-untyped-def]
        assert isinstance(exc, OperationTimeLimit)
        chosen.append(exc.reset_at)
        return 0.0

    client._limit_wait = spy  # type: ignore[method-assign]
    await client.call("profile")
    client._limit_wait = real_wait  # type: ignore[method-assign]
    assert chosen == [first.time["operating_reset_at"]]


async def test_timeline_comments_are_paged_and_ordered(
    portal: FakePortal, session: aiohttp.ClientSession
) -> None:
    """api-reference/crm/timeline/comments/crm-timeline-comment-list.md."""
    portal.add_deal(9)
    portal.enforce_limit = False  # 70 writes to set the scene; the limit is not under test here
    client = client_of(session, portal, rate=1000.0, burst=1000)
    for n in range(70):
        await client.call(
            "crm.timeline.comment.add",
            {"fields": {"ENTITY_ID": 9, "ENTITY_TYPE": "deal", "COMMENT": f"c{n}"}},
        )
    flt = {"ENTITY_ID": 9, "ENTITY_TYPE": "deal"}
    first = await client.call_full("crm.timeline.comment.list", {"filter": flt})
    assert len(first.result) == 50 and first.next == 50
    newest = await client.call("crm.timeline.comment.list", {"filter": flt, "order": {"ID": "DESC"}})
    assert newest[0]["COMMENT"] == "c69"
    every = await client.list_pages("crm.timeline.comment.list", {"filter": flt, "order": {"ID": "DESC"}})
    assert [c["COMMENT"] for c in every][-1] == "c0" and len(every) == 70
    with pytest.raises(ValidationFailed):
        await client.call("crm.timeline.comment.list", {})
