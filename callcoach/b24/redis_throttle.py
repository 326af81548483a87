"""One REST budget per portal for every process of an installation: the leaky bucket lives in
Redis, so the web tier and any number of workers on any number of hosts together stay under the
portal's limit (2 requests/s drain, burst 50; Enterprise 5/s — ``settings/performance/limits.md``).

Why a Lua script and not a rate-limit library: the well-kept Redis limiters (``limits``,
``pyrate-limiter``) offer fixed/moving windows and token buckets with their own refill rules, none
of which can be told "the portal says you are full" (QUERY_LIMIT_EXCEEDED) or "hold this one
method until its reset" (OPERATION_TIME_LIMIT). The portal's own model is a leaky bucket; the
script below is that model, run atomically inside Redis (a script is never interleaved with
another client's commands) on Redis's clock (``TIME``), so hosts whose clocks differ still agree.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from typing import Any

log = logging.getLogger(__name__)

# KEYS[1] bucket hash {level, at}; KEYS[2] the method's OPERATION_TIME_LIMIT key.
# ARGV rate, capacity, ttl. Returns "0" when the request may go, else seconds to wait (as text:
# Redis truncates Lua numbers to integers).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, capacity, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
if blocked > now then return tostring(blocked - now) end
local level = tonumber(redis.call('HGET', KEYS[1], 'level') or '0')
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or tostring(now))
level = math.max(0, level - math.max(0, now - at) * rate)
if level + 1 <= capacity then
  redis.call('HSET', KEYS[1], 'level', tostring(level + 1), 'at', tostring(now))
  redis.call('EXPIRE', KEYS[1], ttl)
  return '0'
end
redis.call('HSET', KEYS[1], 'level', tostring(level), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], ttl)
return tostring((level + 1 - capacity) / rate)
"""

# KEYS[1] bucket hash; ARGV burst, ttl: the portal said it is full, start draining from full.
_FILL = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('HSET', KEYS[1], 'level', ARGV[1], 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""

# KEYS[1] the method's key; ARGV deadline (epoch s). Keeps the later of two blocks.
_BLOCK = """
local deadline = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if deadline > current then
  local ttl = math.max(1, math.ceil(deadline - tonumber(redis.call('TIME')[1])) + 1)
  redis.call('SET', KEYS[1], tostring(deadline), 'EX', ttl)
end
return 1
"""


# KEYS[1] the method's key: seconds it is still held ("0": not held).
_HELD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local blocked = tonumber(redis.call('GET', KEYS[1]) or '0')
if blocked > now then return tostring(blocked - now) end
return '0'
"""


class RedisLeakyBucket:
    """``Throttle`` for one portal, shared through Redis. ``key`` names the portal (member id or
    webhook host) under the installation's namespace."""

    def __init__(
        self, redis: Any, key: str, rate: float = 2.0, burst: int = 50, *, headroom: int = 1
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self._redis = redis
        self.key = key
        self.rate = float(rate)
        self.burst = int(burst)
        # the same spare slot as LeakyBucket: requests reach the portal a little after they leave
        self.capacity = max(1, self.burst - max(0, headroom))
        self._ttl = int(self.burst / self.rate) + 60  # an idle bucket is empty: let the key go
        self._acquire = redis.register_script(_ACQUIRE)
        self._fill = redis.register_script(_FILL)
        self._block = redis.register_script(_BLOCK)
        self._held = redis.register_script(_HELD)
        self._pending: set[asyncio.Task[Any]] = set()

    def _method_key(self, method: str | None) -> str:
        return f"{self.key}:op:{(method or '-').lower()}"

    async def acquire(self, method: str | None = None) -> None:
        if self._pending:  # a fill/block of ours goes first, so our own next request sees it
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        while True:
            wait = float(
                await self._acquire(
                    keys=[self.key, self._method_key(method)],
                    args=[self.rate, self.capacity, self._ttl],
                )
            )
            if wait <= 0:
                return
            # Many processes wake for the same slot: a little spread keeps them from all asking
            # Redis at the same instant.
            await asyncio.sleep(wait + 0.002 + random.random() * 0.02)

    async def unblocked(self, method: str) -> None:
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        while True:  # another process may push the block further meanwhile: ask again after it
            wait = float(await self._held(keys=[self._method_key(method)]))
            if wait <= 0:
                return
            await asyncio.sleep(wait + 0.002)

    async def level(self) -> float:
        """The bucket's level now (for tests and the bench)."""
        raw = await self._redis.hmget(self.key, ["level", "at"])
        if raw[0] is None:
            return 0.0
        now = await self._redis.time()
        elapsed = max(0.0, now[0] + now[1] / 1e6 - float(raw[1]))
        return max(0.0, float(raw[0]) - elapsed * self.rate)

    def fill(self) -> None:
        self._spawn(self._fill(keys=[self.key], args=[self.burst, self._ttl]))

    def block(self, method: str, until: float) -> None:
        self._spawn(self._block(keys=[self._method_key(method)], args=[until]))

    def _spawn(self, coro: Any) -> None:
        # fill() and block() are called from the client's synchronous error path: the write runs
        # as a task, and the next acquire() waits for it.
        task = asyncio.ensure_future(coro)
        self._pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("updating the shared REST budget in Redis failed: %s", task.exception())


class RedisBuckets:
    """Makes the buckets of one installation: ``for_key(portal_key)`` (PortalClients calls it once
    per portal) and owns the Redis connection."""

    def __init__(self, url: str, namespace: str, rate: float, burst: int) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url)
        self.namespace = namespace
        self.rate, self.burst = rate, burst

    def for_key(self, key: str) -> RedisLeakyBucket:
        if key.startswith("webhook:"):  # the webhook URL holds its secret: keep it out of Redis
            key = "webhook-" + hashlib.sha256(key.encode()).hexdigest()[:20]
        return RedisLeakyBucket(self._redis, f"{self.namespace}:b24:{key}", self.rate, self.burst)

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def close(self) -> None:
        await self._redis.aclose()
