"""Finding calls whose event was lost: Bitrix24 never re-sends an event, so a periodic sweep
(and ``callcoach backfill`` for a period) reads the call statistics and enqueues calls not yet
known."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from callcoach.b24.client import B24Client
from callcoach.storage import Store
from callcoach.storage.portals import Portal

log = logging.getLogger(__name__)

# Calls end after they start, and the statistics row appears when they end: look back a bit
# further than the last sweep so that a long call that started before it is not missed.
OVERLAP = timedelta(hours=2)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


async def sweep_portal(
    store: Store,
    client: B24Client,
    portal: Portal,
    *,
    since: datetime,
    until: datetime | None = None,
    source: str = "sweep",
    progress: Callable[[int], None] | None = None,
) -> int:
    """Enqueue the portal's calls started in [since, until) that have no job yet; returns how many."""
    flt: dict[str, str] = {">=CALL_START_DATE": _iso(since)}
    if until is not None:
        flt["<CALL_START_DATE"] = _iso(until)
    added = 0
    batch: list[dict[str, object]] = []

    async def flush() -> None:
        nonlocal added
        known = await store.jobs.known_calls(portal.id, [str(r.get("CALL_ID")) for r in batch])
        for row in batch:
            call_id = str(row.get("CALL_ID") or "")
            if (
                call_id
                and call_id not in known
                and await store.jobs.enqueue(portal.id, call_id, dict(row), source=source)
            ):
                added += 1
        if progress:
            progress(len(batch))
        batch.clear()

    async for row in client.iter_all("voximplant.statistic.get", {"FILTER": flt}):
        batch.append(row)
        if len(batch) >= 200:
            await flush()
    await flush()
    return added


async def sweep_all(
    store: Store,
    client_for: Callable[[Portal], B24Client],
    *,
    default_lookback: timedelta = timedelta(days=1),
) -> int:
    """One sweep over every installed portal, from its last sweep on."""
    total = 0
    for portal in await store.portals.installed():
        started = time.time()
        last = portal.last_sweep_at
        since = datetime.fromtimestamp(last, UTC) - OVERLAP if last else datetime.now(UTC) - default_lookback
        try:
            added = await sweep_portal(store, client_for(portal), portal, since=since)
        except Exception as exc:  # one portal's trouble must not stop the others' sweep
            log.warning("sweep of %s failed: %s", portal.domain, exc)
            continue
        await store.portals.set_fields(portal.id, last_sweep_at=started)
        if added:
            log.info("sweep found %d unseen calls on %s", added, portal.domain)
        total += added
    return total
