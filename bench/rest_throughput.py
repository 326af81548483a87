"""REST throughput against the fake portal's leaky bucket (loopback only, bounded in time).

    python bench/rest_throughput.py [--calls 80] [--rate 2] [--burst 50]

Prints calls/s for plain calls and for the same work done as batches of 50, with the client's
throttle matching the portal's limit. Expect plain ≈ burst quickly, then ``rate``/s; batch ≈
50 × that, since one batch is one request for the limiter.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callcoach.b24 import B24Client
from tests.fakes.portal import FakePortal


def _client(session: aiohttp.ClientSession, portal: FakePortal, rate: float, burst: int) -> B24Client:
    return B24Client.for_portal(
        session,
        portal.credentials(),
        client_id=portal.client_id,
        client_secret=portal.client_secret,
        rate=rate,
        burst=burst,
    )


async def run(calls: int, rate: float, burst: int) -> None:
    async with FakePortal(rate=rate, burst=burst) as portal, aiohttp.ClientSession() as session:
        client = _client(session, portal, rate, burst)
        t0 = time.monotonic()
        await asyncio.gather(*(client.call("user.current") for _ in range(calls)))
        plain = time.monotonic() - t0
        print(
            f"plain: {calls} calls in {plain:.2f}s = {calls / plain:.1f} calls/s "
            f"(rejected by portal: {len(portal.rejected)})"
        )

    async with FakePortal(rate=rate, burst=burst) as portal, aiohttp.ClientSession() as session:
        client = _client(session, portal, rate, burst)
        t0 = time.monotonic()
        commands: dict[str, tuple[str, dict[str, object]]] = {
            f"c{i}": ("user.current", {}) for i in range(calls * 10)
        }
        res = await client.batch_many(commands)
        batch = time.monotonic() - t0
        n = len(res.results)
        print(f"batch: {n} calls in {len(portal.requests)} requests, {batch:.2f}s = {n / batch:.1f} calls/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=80)
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--burst", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(asyncio.wait_for(run(args.calls, args.rate, args.burst), timeout=120))


if __name__ == "__main__":
    main()
