"""Job leases between processes that meet only through the database (the scaled-out mode).

A job published to the broker is leased to a *dispatch* owner (``dispatch:…``) until a worker
takes it over. ``take_over`` lets a worker take a job that is due, of its kind, and not held by
another live worker; anything else (finished, held, not due yet) answers None and the worker
drops the message: the database, not the message, says what is left to do.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, or_, select, update

from callcoach.storage.db import Database, now
from callcoach.storage.jobs import TERMINAL_STATES, Job, _job
from callcoach.storage.schema import jobs

DISPATCHED = "dispatch:"


async def take_over(
    db: Database, job_id: int, owner: str, lease_s: float, states: Sequence[str]
) -> Job | None:
    t = now()
    takeable = and_(
        jobs.c.id == job_id,
        jobs.c.state.in_(list(states)),
        jobs.c.state.notin_(TERMINAL_STATES),
        jobs.c.next_run_at <= t,
        or_(
            jobs.c.lease_owner.is_(None),
            jobs.c.lease_owner.startswith(DISPATCHED),
            jobs.c.lease_until.is_(None),
            jobs.c.lease_until < t,
        ),
    )
    async with db.begin() as conn:
        lease = {"lease_owner": owner, "lease_until": t + lease_s}
        won = await conn.execute(update(jobs).where(takeable).values(**lease))
        if not won.rowcount:
            return None
        row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).one()
    return _job(row)
