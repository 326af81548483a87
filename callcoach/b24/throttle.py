"""Client-side leaky bucket, the same model the portal enforces (2 req/s drain, burst 50).

One bucket per portal: every client that talks to the same portal must share the same bucket,
otherwise their sum overshoots the portal's limit. ``Throttle`` is what a client needs of it;
``LeakyBucket`` serves one process, ``redis_throttle.RedisLeakyBucket`` every process of an
installation (web tier and workers on many hosts).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class Throttle(Protocol):
    """One portal's REST budget, as the client sees it."""

    @property
    def rate(self) -> float: ...

    async def acquire(self, method: str | None = None) -> None:
        """Return when one more request (of ``method``) may go out."""

    def fill(self) -> None:
        """The portal answered QUERY_LIMIT_EXCEEDED: count the bucket as full."""

    def block(self, method: str, until: float) -> None:
        """The portal answered OPERATION_TIME_LIMIT for ``method``: hold it until ``until`` (epoch s)."""

    async def unblocked(self, method: str) -> None:
        """Return when ``method`` is not held (a batch carrying it waits; takes no request slot)."""


class LeakyBucket:
    """``acquire()`` returns when one more request fits: level + 1 <= capacity, level drains at rate/s.

    ``capacity`` is ``burst - headroom`` (at least 1): requests reach the portal a little later
    than they leave the bucket, and unevenly (connection set-up, a busy loop), so the portal's
    bucket can look fuller than ours. One spare slot absorbs up to ``1/rate`` seconds of jitter.
    """

    def __init__(
        self,
        rate: float = 2.0,
        burst: int = 50,
        *,
        headroom: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = float(rate)
        self.burst = int(burst)
        self.capacity = max(1, self.burst - max(0, headroom))
        self._clock = clock
        self._level = 0.0
        self._last = clock()
        # Waiters are served in arrival order: the lock is held while a waiter sleeps.
        self._lock = asyncio.Lock()
        self._blocked: dict[str, float] = {}  # method -> epoch seconds (OPERATION_TIME_LIMIT)

    def _drain(self) -> None:
        now = self._clock()
        self._level = max(0.0, self._level - (now - self._last) * self.rate)
        self._last = now

    @property
    def level(self) -> float:
        self._drain()
        return self._level

    async def unblocked(self, method: str) -> None:
        while (until := self._blocked.get(method)) is not None:
            if (wait := until - time.time()) > 0:
                await asyncio.sleep(wait)
            if self._blocked.get(method) == until:  # not pushed further meanwhile
                del self._blocked[method]

    async def acquire(self, method: str | None = None) -> None:
        if method is not None:
            await self.unblocked(method)
        async with self._lock:
            while True:
                self._drain()
                if self._level + 1.0 <= self.capacity:
                    self._level += 1.0
                    return
                # A small margin so that rounding never lets us arrive a hair too early.
                await asyncio.sleep((self._level + 1.0 - self.capacity) / self.rate + 0.002)

    def fill(self) -> None:
        """The portal said it is full (QUERY_LIMIT_EXCEEDED): believe it and start draining from full."""
        self._drain()
        self._level = float(self.burst)

    def block(self, method: str, until: float) -> None:
        self._blocked[method] = max(until, self._blocked.get(method, 0.0))
