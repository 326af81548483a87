"""Durable call jobs: one row per portal + CALL_ID, claimed under a lease by the worker pool.

A job that was being worked on when its process died keeps its state and an expired lease, so
the next claim picks it up again and resumes from what is already stored (audio, findings,
write-back steps done).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from callcoach.storage.db import Database, now
from callcoach.storage.schema import jobs
from callcoach.values import as_float, as_int

TERMINAL_STATES = ("done", "failed", "skipped")
STATES = ("queued", "fetching", "transcribing", "posting", *TERMINAL_STATES)


@dataclass
class Job:
    id: int
    portal_id: int
    call_id: str
    source: str
    state: str
    reason: str | None
    attempts: int
    record_polls: int
    next_run_at: float
    call: dict[str, Any]
    manager_id: int | None
    call_type: int | None
    call_start: float | None
    duration: float | None
    entity_type: str | None
    entity_id: int | None
    audio_path: str | None
    audio_sha256: str | None
    findings: dict[str, Any] | None
    comment_id: int | None
    created_at: float
    updated_at: float
    finished_at: float | None
    lease_owner: str | None = None
    lease_until: float | None = None
    done_steps: list[str] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


def _job(row: Any) -> Job:
    m = row._mapping
    data = {f: m[f] for f in Job.__dataclass_fields__}
    data["done_steps"] = list(data["done_steps"] or [])
    return Job(**data)


class JobRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def enqueue(
        self,
        portal_id: int,
        call_id: str,
        call: dict[str, Any],
        *,
        source: str = "event",
        conn: AsyncConnection | None = None,
    ) -> bool:
        """Create the job unless one exists for this call; True when it was created."""
        row = self.new_row(portal_id, call_id, call, None, source, now())
        stmt = self.db.insert_ignore(jobs, row, "portal_id", "call_id")
        if conn is not None:
            return bool((await conn.execute(stmt)).rowcount)
        async with self.db.begin() as own:
            return bool((await own.execute(stmt)).rowcount)

    @staticmethod
    def first_deliveries(
        calls: Sequence[tuple[int, str, dict[str, Any], str | None]],
    ) -> dict[tuple[int, str], tuple[dict[str, Any], str | None]]:
        """``(portal_id, call_id) -> (call, skip_reason)``: a call delivered twice in one group
        keeps its first delivery."""
        wanted: dict[tuple[int, str], tuple[dict[str, Any], str | None]] = {}
        for portal_id, call_id, call, skip in calls:
            wanted.setdefault((portal_id, call_id), (call, skip))
        return wanted

    @staticmethod
    def new_row(
        portal_id: int, call_id: str, call: dict[str, Any], skip: str | None, source: str, t: float
    ) -> dict[str, Any]:
        return dict(
            portal_id=portal_id,
            call_id=call_id,
            source=source,
            state="skipped" if skip else "queued",
            reason=skip,
            finished_at=t if skip else None,
            attempts=0,
            record_polls=0,
            next_run_at=t,
            call=call,
            manager_id=as_int(call.get("PORTAL_USER_ID")),
            call_type=as_int(call.get("CALL_TYPE")),
            duration=as_float(call.get("CALL_DURATION")),
            done_steps=[],
            created_at=t,
            updated_at=t,
        )

    async def claim(self, owner: str, lease_s: float) -> Job | None:
        """Take the next runnable job under a lease, or None. Safe with several workers and
        processes: the UPDATE only wins when nobody else holds a live lease. A lost race means
        another worker took that job, so retrying until none is runnable always ends."""
        t = now()
        runnable = and_(
            jobs.c.state.notin_(TERMINAL_STATES),
            jobs.c.next_run_at <= t,
            or_(jobs.c.lease_until.is_(None), jobs.c.lease_until < t),
        )
        while True:
            async with self.db.begin() as conn:
                job_id = (
                    await conn.execute(
                        select(jobs.c.id).where(runnable).order_by(jobs.c.next_run_at, jobs.c.id).limit(1)
                    )
                ).scalar()
                if job_id is None:
                    return None
                won = await conn.execute(
                    update(jobs)
                    .where(and_(jobs.c.id == job_id, runnable))
                    .values(lease_owner=owner, lease_until=t + lease_s)
                )
                if won.rowcount:
                    row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).one()
                    return _job(row)

    async def save(self, job_id: int, owner: str | None = None, **values: Any) -> bool:
        """Update a job; with ``owner``, only while that owner still holds the lease."""
        cond = jobs.c.id == job_id
        if owner is not None:
            cond = and_(cond, jobs.c.lease_owner == owner)
        values["updated_at"] = now()
        if values.get("state") in TERMINAL_STATES:
            values.setdefault("finished_at", values["updated_at"])
        async with self.db.begin() as conn:
            return bool((await conn.execute(update(jobs).where(cond).values(**values))).rowcount)

    async def release(self, job_id: int, owner: str, **values: Any) -> bool:
        return await self.save(job_id, owner, lease_owner=None, lease_until=None, **values)

    async def extend_lease(self, job_id: int, owner: str, lease_s: float) -> bool:
        return await self.save(job_id, owner, lease_until=now() + lease_s)

    async def release_leases_of(self, is_dead: Callable[[str], bool]) -> int:
        """Free the live leases whose owner ``is_dead`` says has died (a process of this host that
        is gone), so their jobs run again now rather than when the lease runs out."""
        async with self.db.begin() as conn:
            owners = await conn.execute(
                select(jobs.c.lease_owner)
                .where(and_(jobs.c.lease_owner.is_not(None), jobs.c.lease_until >= now()))
                .distinct()
            )
            dead = [owner for (owner,) in owners if is_dead(owner)]
            if not dead:
                return 0
            freed = await conn.execute(
                update(jobs)
                .where(jobs.c.lease_owner.in_(dead))
                .values(lease_owner=None, lease_until=None, updated_at=now())
            )
            return int(freed.rowcount)

    async def get(self, job_id: int) -> Job | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).first()
        return _job(row) if row else None

    async def by_call(self, portal_id: int, call_id: str) -> Job | None:
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    select(jobs).where(and_(jobs.c.portal_id == portal_id, jobs.c.call_id == call_id))
                )
            ).first()
        return _job(row) if row else None

    async def known_calls(self, portal_id: int, call_ids: list[str]) -> set[str]:
        if not call_ids:
            return set()
        async with self.db.connect() as conn:
            rows = await conn.execute(
                select(jobs.c.call_id).where(
                    and_(jobs.c.portal_id == portal_id, jobs.c.call_id.in_(call_ids))
                )
            )
            return {r[0] for r in rows}

    async def counts_by_state(self) -> dict[str, int]:
        async with self.db.connect() as conn:
            rows = await conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state))
            counts = {state: 0 for state in STATES}
            counts.update({r[0]: int(r[1]) for r in rows})
            return counts

    async def queue_depth(self) -> int:
        async with self.db.connect() as conn:
            q = select(func.count()).select_from(jobs).where(jobs.c.state.notin_(TERMINAL_STATES))
            return int((await conn.execute(q)).scalar_one())

    async def next_wakeup(self) -> float | None:
        """When the earliest waiting job becomes runnable (for the worker's sleep). A job under
        someone's lease becomes runnable when the lease runs out, not before: idle workers must
        not poll the database while another one works."""
        runnable_at = case(
            (
                and_(jobs.c.lease_until.is_not(None), jobs.c.lease_until > jobs.c.next_run_at),
                jobs.c.lease_until,
            ),
            else_=jobs.c.next_run_at,
        )
        async with self.db.connect() as conn:
            q = select(func.min(runnable_at)).where(jobs.c.state.notin_(TERMINAL_STATES))
            value = (await conn.execute(q)).scalar()
            return float(value) if value is not None else None

    async def list_jobs(
        self,
        portal_id: int | None = None,
        *,
        since: float | None = None,
        until: float | None = None,
        manager_ids: list[int] | None = None,
        states: tuple[str, ...] | None = None,
        limit: int = 10000,
    ) -> list[Job]:
        q = select(jobs)
        if portal_id is not None:
            q = q.where(jobs.c.portal_id == portal_id)
        # A call without a start date counts by when we learnt of it.
        started = func.coalesce(jobs.c.call_start, jobs.c.created_at)
        if since is not None:
            q = q.where(started >= since)
        if until is not None:
            q = q.where(started < until)
        if manager_ids is not None:
            q = q.where(jobs.c.manager_id.in_(manager_ids))
        if states is not None:
            q = q.where(jobs.c.state.in_(states))
        q = q.order_by(started.desc(), jobs.c.id.desc()).limit(limit)
        async with self.db.connect() as conn:
            return [_job(r) for r in (await conn.execute(q)).all()]

    async def old_audio(self, before: float) -> list[Job]:
        q = select(jobs).where(and_(jobs.c.audio_path.is_not(None), jobs.c.updated_at < before))
        q = q.where(jobs.c.state.in_(TERMINAL_STATES))
        async with self.db.connect() as conn:
            return [_job(r) for r in (await conn.execute(q)).all()]

    async def delete_before(self, portal_id: int, before: float) -> int:
        async with self.db.begin() as conn:
            result = await conn.execute(
                jobs.delete().where(
                    and_(
                        jobs.c.portal_id == portal_id,
                        func.coalesce(jobs.c.call_start, jobs.c.created_at) < before,
                    )
                )
            )
            return int(result.rowcount)
