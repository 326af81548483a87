"""Client-side leaky bucket, the same model the portal enforces (2 req/s drain, burst 50).

One bucket per portal: every client that talks to the same portal must share the same
``LeakyBucket`` instance, otherwise their sum overshoots the portal's limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


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

    def _drain(self) -> None:
        now = self._clock()
        self._level = max(0.0, self._level - (now - self._last) * self.rate)
        self._last = now

    @property
    def level(self) -> float:
        self._drain()
        return self._level

    async def acquire(self) -> None:
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
