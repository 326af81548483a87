"""Loading a portal's company structure (the rights rule of the bot and the dashboard) against
the fake portal, which takes department.get's and user.get's documented parameters only.

    python bench/org_chart.py [--departments 120] [--users 600] [--rate 2] [--burst 50]

Prints the wall time and the REST requests per method: department.get pages of 50 by START,
user.get pages of 50 by start; the first page of each tells the total, the rest go in batches of
up to 50 pages (one request each for the portal's limit).
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
from callcoach.rights import load_chart
from tests.fakes.portal import FakePortal


async def run(departments: int, users: int, rate: float, burst: int) -> None:
    async with FakePortal(rate=rate, burst=burst) as portal, aiohttp.ClientSession() as session:
        for n in range(2, departments + 1):
            portal.add_department(n, f"Отдел {n}", head_user_id=n if n <= users else None, parent=1)
        for n in range(2, users + 1):
            portal.add_user(n, f"Сотрудник {n}", [2 + n % max(1, departments - 1)])
        client = B24Client.for_portal(
            session,
            portal.credentials(),
            client_id=portal.client_id,
            client_secret=portal.client_secret,
            oauth_url=portal.oauth_url,
            allow_private_portals=True,  # the fake portal is on 127.0.0.1
            rate=rate,
            burst=burst,
        )
        t0 = time.monotonic()
        chart = await load_chart(client)
        wall = time.monotonic() - t0
        print(
            f"departments {departments}, users {users}: loaded in {wall:.2f} s; "
            f"department.get {portal.http_count('department.get')} requests, "
            f"user.get {portal.http_count('user.get')}, batch {portal.http_count('batch')}, "
            f"profile {portal.http_count('profile')} ({len(portal.requests)} in all); "
            f"heads {len(chart.heads)}, names {len(chart.names)}, rejected {len(portal.rejected)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--departments", type=int, default=120)
    parser.add_argument("--users", type=int, default=600)
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--burst", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(run(args.departments, args.users, args.rate, args.burst))


if __name__ == "__main__":
    main()
