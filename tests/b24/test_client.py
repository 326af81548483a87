"""B24Client against the fake portal (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest

from callcoach.b24 import (
    B24Client,
    DownloadTooLarge,
    ForbiddenDownload,
    InvalidGrant,
    LeakyBucket,
    MethodNotFound,
    NotFound,
    PortalCredentials,
    QueryLimitExceeded,
    php_query,
)
from tests.fakes.portal import FakePortal


def oauth_client(session: aiohttp.ClientSession, portal: FakePortal, **kw: object) -> B24Client:
    return B24Client.for_portal(
        session,
        portal.credentials(),
        client_id=portal.client_id,
        client_secret=portal.client_secret,
        backoff_base_s=0.05,
        **kw,  # type: ignore[arg-type]
    )


async def test_call_returns_result_and_sends_auth(portal: FakePortal, session: aiohttp.ClientSession) -> None:
    portal.add_user(7, "Иван Петров", [3])
    client = oauth_client(session, portal)
    users = await client.call("user.get", {"ID": 7})
    assert users[0]["NAME"] == "Иван" and users[0]["UF_DEPARTMENT"] == [3]
    full = await client.call_full("user.get", {})
    assert full.total == 2 and full.time["duration"] >= 0


async def test_expired_token_is_refreshed_once_for_20_concurrent_calls(
    portal: FakePortal, session: aiohttp.ClientSession
) -> None:
    saved: list[PortalCredentials] = []

    async def sink(creds: PortalCredentials) -> None:
        saved.append(creds)

    client = oauth_client(session, portal, on_tokens=sink)
    await client.call("profile")
    portal.expire_access_tokens()
    results = await asyncio.gather(*(client.call("profile") for _ in range(20)))
    assert all(r["ID"] == "1" for r in results)
    assert portal.refresh_count == 1
    assert len(saved) == 1 and saved[0].access_token == portal.access_token
    assert saved[0].refresh_token == portal.refresh_token


async def test_tokens_refreshed_by_another_process_are_adopted_not_refreshed_again(
    portal: FakePortal, session: aiohttp.ClientSession
) -> None:
    """The CLI (another process) refreshed the portal's tokens; the server's client still holds the
    old, now spent, refresh token. It must take the stored tokens instead of failing the portal
    with invalid_grant."""
    store: dict[str, PortalCredentials] = {}

    async def save(creds: PortalCredentials) -> None:
        store[creds.member_id] = creds

    async def load(member_id: str) -> PortalCredentials | None:
        return store.get(member_id)

    server = oauth_client(session, portal, on_tokens=save, stored=load)
    cli = oauth_client(session, portal, on_tokens=save, stored=load)
    portal.expire_access_tokens()
    assert (await cli.call("profile"))["ID"] == "1"
    assert (await server.call("profile"))["ID"] == "1"
    assert portal.refresh_count == 1
    assert server.credentials is not None and server.credentials.access_token == portal.access_token

    unaware = oauth_client(session, portal)  # without a token source the spent token fails
    portal.expire_access_tokens()
    assert (await cli.call("profile"))["ID"] == "1"
    with pytest.raises(InvalidGrant):
        await unaware.call("profile")


async def test_invalid_grant_raises(portal: FakePortal, session: aiohttp.ClientSession) -> None:
    client = oauth_client(session, portal)
    portal.expire_access_tokens()
    portal.revoke_refresh_tokens()
    with pytest.raises(InvalidGrant):
        await client.call("profile")


async def test_query_limit_exceeded_waits_and_succeeds(session: aiohttp.ClientSession) -> None:
    async with FakePortal(rate=20, burst=3) as portal:
        # The client believes in a bigger bucket than the portal has: the portal must push back.
        client = oauth_client(session, portal, rate=100, burst=100)
        results = await asyncio.gather(*(client.call("user.current") for _ in range(8)))
        assert len(results) == 8
        assert portal.rejected, "the portal should have answered QUERY_LIMIT_EXCEEDED"


async def test_query_limit_429_and_injected_failure(
    portal: FakePortal, session: aiohttp.ClientSession
) -> None:
    portal.fail_next("profile", "QUERY_LIMIT_EXCEEDED", 429, times=2)
    client = oauth_client(session, portal)
    assert (await client.call("profile"))["ID"] == "1"
    assert portal.http_count("profile") == 3


async def test_query_limit_gives_up_after_max_retries(
    portal: FakePortal, session: aiohttp.ClientSession
) -> None:
    portal.fail_next("profile", "QUERY_LIMIT_EXCEEDED", 503, times=10)
    client = oauth_client(session, portal, max_retries=2)
    with pytest.raises(QueryLimitExceeded):
        await client.call("profile")


async def test_operation_time_limit_waits_for_reset(
    portal: FakePortal, session: aiohttp.ClientSession
) -> None:
    portal.fail_next("user.current", "OPERATION_TIME_LIMIT", 429, reset_in=1)
    client = oauth_client(session, portal)
    assert (await client.call("user.current"))["ID"] == "1"


async def test_write_is_not_replayed_after_server_error(
    portal: FakePortal, session: aiohttp.ClientSession
) -> None:
    deal = portal.add_deal(5)
    portal.fail_next("crm.timeline.comment.add", "INTERNAL_SERVER_ERROR", 500)
    portal.fail_next("crm.deal.get", "INTERNAL_SERVER_ERROR", 500)
    client = oauth_client(session, portal)
    assert (await client.call("crm.deal.get", {"id": 5}))["ID"] == deal["ID"]  # a read is retried
    with pytest.raises(Exception) as info:
        await client.call(
            "crm.timeline.comment.add", {"fields": {"ENTITY_ID": 5, "ENTITY_TYPE": "deal", "COMMENT": "x"}}
        )
    assert getattr(info.value, "code", None) == "INTERNAL_SERVER_ERROR"
    assert portal.comments == []


async def test_unknown_method_and_not_found(portal: FakePortal, session: aiohttp.ClientSession) -> None:
    client = oauth_client(session, portal)
    with pytest.raises(MethodNotFound):
        await client.call("no.such.method")
    with pytest.raises(NotFound):
        await client.call("disk.file.get", {"id": 999999})


async def test_list_all_1000_rows_in_at_most_21_requests(
    portal: FakePortal, session: aiohttp.ClientSession
) -> None:
    start = datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=3)))
    for i in range(1000):
        portal.add_call(
            f"c{i}", recording=None, user_id=1, duration=30, start_date=start + timedelta(minutes=i)
        )
    client = oauth_client(session, portal)
    rows = await client.list_all(
        "voximplant.statistic.get", {"FILTER": {">=CALL_START_DATE": start.isoformat()}}
    )
    assert [r["CALL_ID"] for r in rows] == [f"c{i}" for i in range(1000)]
    assert len(portal.requests) <= 21
    deals = [portal.add_deal(title=f"d{i}") for i in range(120)]
    got = await client.list_all("crm.deal.list", {"select": ["ID", "TITLE"]}, limit=75)
    assert [d["ID"] for d in got] == [d["ID"] for d in deals[:75]]


async def test_list_all_date_window(portal: FakePortal, session: aiohttp.ClientSession) -> None:
    t0 = datetime(2025, 3, 1, 12, tzinfo=UTC)
    for i in range(5):
        portal.add_call(f"w{i}", recording=None, user_id=1, duration=30, start_date=t0 + timedelta(days=i))
    client = oauth_client(session, portal)
    flt = {
        ">=CALL_START_DATE": (t0 + timedelta(days=1)).isoformat(),
        "<=CALL_START_DATE": (t0 + timedelta(days=3)).isoformat(),
    }
    rows = await client.list_all("voximplant.statistic.get", {"FILTER": flt})
    assert [r["CALL_ID"] for r in rows] == ["w1", "w2", "w3"]


async def test_batch_references_and_per_command_error(
    portal: FakePortal, session: aiohttp.ClientSession
) -> None:
    portal.add_call("call-1", recording=b"RIFF", user_id=1, duration=40)
    client = oauth_client(session, portal)
    res = await client.batch(
        {
            "stat": ("voximplant.statistic.get", {"FILTER": {"CALL_ID": "call-1"}}),
            "file": ("disk.file.get", {"id": "$result[stat][0][RECORD_FILE_ID]"}),
            "bad": ("disk.file.get", {"id": 424242}),
            "nomethod": ("no.such", {}),
        }
    )
    assert res.results["file"]["NAME"] == "call-1.mp3"
    assert isinstance(res.errors["bad"], NotFound)
    assert isinstance(res.errors["nomethod"], MethodNotFound)
    assert res.totals["stat"] == 1
    assert len(portal.requests) == 1
    with pytest.raises(ValueError):
        await client.batch({str(i): ("profile", {}) for i in range(51)})


def test_php_query_encoding() -> None:
    q = php_query(
        {
            "FILTER": {">=CALL_START_DATE": "2025-01-01T00:00:00+03:00", "ID": [1, 2]},
            "a": True,
            "skip": None,
            "text": "a&b=c",
        }
    )
    assert q == (
        "FILTER[%3E%3DCALL_START_DATE]=2025-01-01T00%3A00%3A00%2B03%3A00&FILTER[ID][0]=1"
        "&FILTER[ID][1]=2&a=1&text=a%26b%3Dc"
    )


async def test_webhook_mode(portal: FakePortal, session: aiohttp.ClientSession) -> None:
    portal.add_deal(9, "Deal 9")
    client = B24Client.for_webhook(session, portal.webhook_url)
    cid = await client.call(
        "crm.timeline.comment.add",
        {"fields": {"ENTITY_ID": 9, "ENTITY_TYPE": "deal", "COMMENT": "[b]hi[/b]"}},
    )
    assert portal.comments[0]["ID"] == cid and portal.comments[0]["COMMENT"] == "[b]hi[/b]"
    assert "secret" not in repr(client) and portal.webhook_secret not in repr(client)
    bad = B24Client.for_webhook(session, portal.url + "/rest/1/wrong/")
    with pytest.raises(Exception) as info:
        await bad.call("profile")
    assert getattr(info.value, "code", None) == "NO_AUTH_FOUND"


async def test_download(portal: FakePortal, session: aiohttp.ClientSession, tmp_path: Path) -> None:
    audio = bytes(range(256)) * 400
    portal.add_call("rec", recording=audio, user_id=1, duration=60)
    client = oauth_client(session, portal)
    row = (await client.call("voximplant.statistic.get", {"FILTER": {"CALL_ID": "rec"}}))[0]
    url = (await client.call("disk.file.get", {"id": row["RECORD_FILE_ID"]}))["DOWNLOAD_URL"]
    dest = tmp_path / "a" / "rec.mp3"
    assert await client.download(url, dest, max_bytes=10**6, allowed_hosts=[portal.domain]) == len(audio)
    assert dest.read_bytes() == audio and portal.downloads == [int(row["RECORD_FILE_ID"])]
    with pytest.raises(ForbiddenDownload):
        await client.download(
            url.replace("127.0.0.1", "localhost"),
            tmp_path / "x.mp3",
            max_bytes=10**6,
            allowed_hosts=[portal.domain],
        )
    with pytest.raises(DownloadTooLarge):
        await client.download(url, tmp_path / "big.mp3", max_bytes=1000, allowed_hosts=["127.0.0.1"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # nothing left behind


async def test_record_appears_after_polls(portal: FakePortal, session: aiohttp.ClientSession) -> None:
    portal.add_call("late", recording=b"x", user_id=1, duration=20, record_after_polls=2)
    client = oauth_client(session, portal)
    seen = [
        (await client.call("voximplant.statistic.get", {"FILTER": {"CALL_ID": "late"}}))[0]["RECORD_FILE_ID"]
        for _ in range(3)
    ]
    assert seen[0] is None and seen[1] is None and seen[2] is not None


async def test_tokens_never_logged(
    portal: FakePortal, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[tuple[str, str | None]] = []
    client = oauth_client(session, portal, on_request=lambda m, s, e: seen.append((m, e)))
    old_access, old_refresh = portal.access_token, portal.refresh_token
    portal.expire_access_tokens()
    await client.call("profile")
    portal.fail_next("profile", "ACCESS_DENIED", 403, description=f"bad auth={portal.access_token}")
    with pytest.raises(Exception) as info:
        await client.call("profile")
    secrets_ = [old_access, old_refresh, portal.access_token, portal.refresh_token, portal.client_secret]
    text = caplog.text + str(info.value) + repr(info.value) + repr(client) + repr(client.credentials)
    assert "profile" in caplog.text
    for s in secrets_:
        assert s not in text
    assert ("profile", "expired_token") in seen and ("profile", None) in seen


async def test_throttle_keeps_portal_limit(session: aiohttp.ClientSession) -> None:
    async with FakePortal(rate=10, burst=5) as portal:
        bucket = LeakyBucket(10, 5)
        a = oauth_client(session, portal, throttle=bucket)
        b = B24Client.for_webhook(session, portal.webhook_url, throttle=bucket)
        await asyncio.gather(*(c.call("profile") for c in (a, b) for _ in range(12)))
        assert portal.rejected == []
        # Never more than burst + rate * t requests in any window t.
        assert portal.max_requests_in_window(1.0) <= 5 + 10 * 1.0
