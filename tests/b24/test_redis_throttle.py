"""One REST budget per portal shared through Redis (b24/redis_throttle.py): clients that share
nothing but the Redis key — as the web tier and the workers on other hosts do — stay under the
portal's limit together, and a QUERY_LIMIT_EXCEEDED or OPERATION_TIME_LIMIT one of them meets
holds the others too. Real Redis (the local server), real HTTP to the fake portal."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from callcoach.b24 import B24Client
from callcoach.b24.redis_throttle import RedisBuckets
from tests.fakes.portal import FakePortal

REDIS_URL = os.environ.get("CALLCOACH_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def buckets() -> AsyncIterator[tuple[RedisBuckets, RedisBuckets]]:
    """Two processes' worth of bucket makers on one Redis, under a namespace of this test's own."""
    namespace = "cc-test-" + secrets.token_hex(4)
    pair = (RedisBuckets(REDIS_URL, namespace, 10.0, 5), RedisBuckets(REDIS_URL, namespace, 10.0, 5))
    try:
        await pair[0].ping()
    except Exception as exc:
        for b in pair:
            await b.close()
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable ({exc}), and CI must run the shared-budget tests")
        pytest.skip(f"Redis is not reachable ({exc})")
    yield pair
    from redis.asyncio import Redis

    redis = Redis.from_url(REDIS_URL)
    keys = [k async for k in redis.scan_iter(f"{namespace}:*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()
    for b in pair:
        await b.close()


def _client(session: aiohttp.ClientSession, portal: FakePortal, throttle: object) -> B24Client:
    return B24Client.for_portal(
        session,
        portal.credentials(),
        client_id=portal.client_id,
        client_secret=portal.client_secret,
        throttle=throttle,  # type: ignore[arg-type]
        backoff_base_s=0.05,
    )


async def test_two_processes_buckets_keep_the_portal_limit_together(
    session: aiohttp.ClientSession, buckets: tuple[RedisBuckets, RedisBuckets]
) -> None:
    async with FakePortal(rate=10, burst=5) as portal:
        # each "process" has its own bucket object; only the Redis key joins them
        a = _client(session, portal, buckets[0].for_key(portal.member_id))
        b = _client(session, portal, buckets[1].for_key(portal.member_id))
        started = time.monotonic()
        await asyncio.gather(*(c.call("profile") for c in (a, b) for _ in range(15)))
        elapsed = time.monotonic() - started
        assert portal.rejected == []
        assert portal.max_requests_in_window(1.0) <= 5 + 10 * 1.0
        # 30 requests through a bucket of 4 (one slot of headroom) draining 10/s take >= 2.6 s
        assert elapsed >= (30 - 4) / 10 - 0.1


async def test_query_limit_exceeded_met_by_one_holds_the_other(
    buckets: tuple[RedisBuckets, RedisBuckets],
) -> None:
    a, b = buckets[0].for_key("portal-x"), buckets[1].for_key("portal-x")
    await a.acquire()
    a.fill()  # a met QUERY_LIMIT_EXCEEDED: the portal's bucket is full
    await a.acquire()  # a's own write lands first; a now waits a slot's drain
    started = time.monotonic()
    await b.acquire()  # b, another process, waits for the drain as well
    assert time.monotonic() - started >= 0.05
    assert await b.level() > 3


async def test_operation_time_limit_holds_that_method_only_in_every_process(
    buckets: tuple[RedisBuckets, RedisBuckets],
) -> None:
    a, b = buckets[0].for_key("portal-y"), buckets[1].for_key("portal-y")
    a.block("crm.deal.list", time.time() + 1.0)
    await a.acquire("profile")  # (also lets a's block reach Redis)
    started = time.monotonic()
    await b.acquire("user.get")  # another method is not held
    assert time.monotonic() - started < 0.3
    await b.acquire("crm.deal.list")  # the blocked method waits out the block
    assert time.monotonic() - started >= 0.7


async def test_webhook_secrets_never_reach_redis_keys(buckets: tuple[RedisBuckets, RedisBuckets]) -> None:
    bucket = buckets[0].for_key("webhook:https://portal.example/rest/1/s3cr3t-token/")
    assert "s3cr3t" not in bucket.key and bucket.key.startswith(buckets[0].namespace + ":b24:webhook-")


async def test_a_nested_operation_time_limit_holds_the_method_for_the_other_process(
    session: aiohttp.ClientSession, buckets: tuple[RedisBuckets, RedisBuckets]
) -> None:
    async with FakePortal() as portal:
        portal.add_deal(9)
        comment = (
            "crm.timeline.comment.add",
            {"fields": {"ENTITY_ID": 9, "ENTITY_TYPE": "deal", "COMMENT": "x"}},
        )
        a = _client(session, portal, buckets[0].for_key(portal.member_id))
        b = _client(session, portal, buckets[1].for_key(portal.member_id))
        a.max_wait_s = b.max_wait_s = 1.0
        portal.fail_next("crm.timeline.comment.add", "OPERATION_TIME_LIMIT", 429)
        first = await a.batch({"c": comment})
        assert first.errors["c"].code == "OPERATION_TIME_LIMIT"
        await a.call("profile")  # (lets a's hold reach Redis)
        started = time.monotonic()
        second = await b.batch({"c": comment})  # the other process waits out a's hold
        assert time.monotonic() - started >= 0.7
        assert not second.errors and len(portal.comments) == 1
