"""The intake's write on both databases: a group of events and the jobs of their calls goes in
all or nothing, each call gets one job whatever the deliveries, and the portal look-up of event
verification reads the database once per key however many requests wait for it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.exc import SQLAlchemyError

from callcoach.storage import Portal, PortalRepo, Store
from callcoach.storage.portal_cache import VerificationPortals
from callcoach.workflow.intake import Intake
from tests.helpers import install_portal


def _call_end(call: dict[str, Any]) -> dict[str, Any]:
    return {"event": "ONVOXIMPLANTCALLEND", "data": call, "auth": {"application_token": "app-token"}}


@pytest.mark.parametrize("rows", [1, 50])
async def test_intake_writes_events_and_jobs_in_one_go(store: Store, rows: int) -> None:
    portal = await install_portal(store)
    intake = Intake(store, min_call_seconds=10)
    calls = [
        {"CALL_ID": f"c{n % (rows // 2 + 1)}", "CALL_DURATION": "60", "PORTAL_USER_ID": "7"}
        for n in range(rows)
    ]
    calls.append({"CALL_ID": "missed", "CALL_FAILED_CODE": "304", "CALL_DURATION": "0"})
    outcomes = await asyncio.gather(
        *(intake.accept(portal, "ONVOXIMPLANTCALLEND", _call_end(c)) for c in calls)
    )
    distinct = len({c["CALL_ID"] for c in calls[:-1]})
    assert outcomes.count("queued") == distinct
    assert outcomes.count("duplicate") == rows - distinct
    assert outcomes[-1] == "skipped"
    assert await store.events.count() == rows + 1
    missed = await store.jobs.by_call(portal.id, "missed")
    assert missed is not None and missed.state == "skipped" and "not connected" in (missed.reason or "")
    job = await store.jobs.by_call(portal.id, "c0")
    assert job is not None and job.state == "queued" and job.source == "event"
    assert job.manager_id == 7 and job.duration == 60 and job.call["CALL_ID"] == "c0"
    assert job.done_steps == [] and job.attempts == 0
    # a later delivery of the same call, in a group of its own: stored, no second job
    assert await intake.accept(portal, "ONVOXIMPLANTCALLEND", _call_end(calls[0])) == "duplicate"
    assert await intake.accept(portal, "ONAPPTEST", {"event": "ONAPPTEST", "data": {}}) == "stored"
    assert await store.events.count() == rows + 3
    await intake.close()


async def test_a_group_that_cannot_be_written_leaves_nothing_and_fails_alone(store: Store) -> None:
    """An event of a portal deleted meanwhile breaks its group's foreign key: the group rolls back
    whole, the writer retries its items one by one, and only that event fails."""
    portal = await install_portal(store)
    gone = await install_portal(store, "m-2")
    await store.portals.delete(gone.id)
    intake = Intake(store, min_call_seconds=10)
    good = [{"CALL_ID": f"ok{n}", "CALL_DURATION": "60"} for n in range(3)]
    results = await asyncio.gather(
        *(intake.accept(portal, "ONVOXIMPLANTCALLEND", _call_end(c)) for c in good),
        intake.accept(gone, "ONVOXIMPLANTCALLEND", _call_end({"CALL_ID": "orphan", "CALL_DURATION": "60"})),
        return_exceptions=True,
    )
    assert results[:3] == ["queued"] * 3
    assert isinstance(results[3], SQLAlchemyError)  # what the route answers 503 "try again" to
    assert await store.events.count() == 3
    assert await store.jobs.by_call(gone.id, "orphan") is None
    # the writer goes on after the failure (on PostgreSQL: on a fresh connection)
    assert await intake.accept(portal, "ONVOXIMPLANTCALLEND", _call_end({"CALL_ID": "after"})) == "queued"
    await intake.close()


async def test_an_expired_portal_row_is_read_once_for_a_burst(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await install_portal(store)
    portals = VerificationPortals(store.db, ttl_s=0.05)
    reads = 0
    original = PortalRepo.by_member

    async def counted(self: PortalRepo, member_id: str) -> Portal | None:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.01)  # a look-up takes a while: the burst arrives meanwhile
        return await original(self, member_id)

    monkeypatch.setattr(PortalRepo, "by_member", counted)
    found = await asyncio.gather(*(portals.by_member("m-1") for _ in range(50)))
    assert all(p is not None and p.member_id == "m-1" for p in found)
    assert reads == 1
    await asyncio.sleep(0.06)  # expired: the next burst reads it again, once
    await asyncio.gather(*(portals.by_member("m-1") for _ in range(50)))
    assert reads == 2
    assert await portals.by_member("nobody") is None
