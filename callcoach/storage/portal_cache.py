"""The portal look-up of event verification, remembered for a second.

Every event delivery is verified against its portal's row (``auth[application_token]``). Read
from the database each time, that look-up cost as much as the rest of the intake together; a
portal's row changes only on install, uninstall and token refresh, and verification reads only
its identity, status and application token. So the rows are kept for ``ttl_s``: the handlers
that install or uninstall in this process ``forget`` them at once, and a change made by another
process shows within ``ttl_s``. Only positive answers are kept, so a portal installed a moment
ago is found at once. The access tokens of a kept row may be stale: nothing on this path uses
them (the REST clients read their tokens from the store).

When a kept row expires under a burst, every request that arrives before the fresh row does
would read it too: dozens of identical queries at once, queued for the pool's connections, and
each of those requests waits for all of them (this was the slowest hundredth of the intake's
acknowledgements). So one look-up per key is in flight at a time, and the requests that arrive
meanwhile wait for its answer.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from callcoach.storage.db import Database
from callcoach.storage.portals import Portal, PortalRepo


class VerificationPortals(PortalRepo):
    def __init__(self, db: Database, *, ttl_s: float = 1.0) -> None:
        super().__init__(db)
        self.ttl_s = ttl_s
        self._by_member: dict[str, tuple[float, Portal]] = {}
        self._by_domain: dict[str, tuple[float, Portal]] = {}
        self._loading: dict[tuple[int, str], asyncio.Future[Portal | None]] = {}  # key -> its look-up

    async def by_member(self, member_id: str) -> Portal | None:
        return await self._cached(self._by_member, member_id, super().by_member)

    async def by_domain(self, domain: str) -> Portal | None:
        return await self._cached(self._by_domain, domain, super().by_domain)

    async def _cached(self, memo: dict[str, tuple[float, Portal]], key: str, load: Any) -> Portal | None:
        kept = memo.get(key)
        if kept is not None and time.monotonic() - kept[0] < self.ttl_s:
            return kept[1]
        flight = (id(memo), key)
        task = self._loading.get(flight)
        if task is None:
            task = asyncio.ensure_future(self._load(memo, key, load))
            self._loading[flight] = task
            task.add_done_callback(lambda done: self._done(flight, done))
        return await asyncio.shield(task)  # a caller that gives up does not cancel the others'

    async def _load(self, memo: dict[str, tuple[float, Portal]], key: str, load: Any) -> Portal | None:
        started = time.monotonic()
        portal: Portal | None = await load(key)
        if portal is None:
            memo.pop(key, None)
        else:
            if len(memo) > 10_000:  # forged member ids cannot grow it: only found rows are kept
                memo.clear()
            memo[key] = (started, portal)
        return portal

    def _done(self, flight: tuple[int, str], task: asyncio.Future[Portal | None]) -> None:
        self._loading.pop(flight, None)
        if not task.cancelled():
            task.exception()  # every waiter may have gone: the error is theirs, not the loop's log

    def forget(self) -> None:
        """A portal was installed or uninstalled here: read every row afresh."""
        self._by_member.clear()
        self._by_domain.clear()
