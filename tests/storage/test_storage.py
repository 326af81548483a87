"""The storage layer on both databases it supports: SQLite (embedded default) and PostgreSQL
(the server running on this machine; CI runs these tests against it)."""

from __future__ import annotations

import asyncio
import time

from callcoach.pipeline.models import Category, ProposedCategory
from callcoach.storage import Store
from tests.helpers import install_portal


async def test_migrations_are_idempotent(store: Store) -> None:
    await store.db.migrate()
    await store.db.migrate()
    assert await store.db.ping()


async def test_portal_install_reinstall_and_tokens(store: Store) -> None:
    pid = (await install_portal(store)).id
    first = await store.portals.get(pid)
    assert first is not None and first.ai_secret
    again = await store.portals.upsert_install(
        member_id="m-1",
        domain="m-1.bitrix24.ru",
        client_endpoint="https://m-1.bitrix24.ru/rest/",
        server_endpoint="https://oauth.bitrix.info/rest/",
        access_token="access2",
        refresh_token="refresh2",
        expires_at=0,
        application_token="app-token-2",
        scope="crm",
    )
    assert again.id == pid and again.application_token == "app-token-2"
    assert again.ai_secret == first.ai_secret  # the CoPilot URL stays valid across re-installs
    await store.portals.save_tokens("m-1", "a3", "r3", 123.0)
    p = await store.portals.by_member("m-1")
    assert p is not None and (p.access_token, p.refresh_token, p.expires_at) == ("a3", "r3", 123.0)
    assert "a3" not in repr(p)
    assert (await store.portals.by_ai_secret(first.ai_secret or "")) == p
    await store.portals.mark_uninstalled(pid)
    assert await store.portals.installed() == []


async def test_job_enqueue_is_idempotent_per_portal_and_call(store: Store) -> None:
    pid = (await install_portal(store)).id
    other = (await install_portal(store, "m-2")).id
    assert await store.jobs.enqueue(pid, "CALL-1", {"CALL_DURATION": "42", "PORTAL_USER_ID": "7"})
    assert not await store.jobs.enqueue(pid, "CALL-1", {"CALL_DURATION": "42"})
    assert await store.jobs.enqueue(other, "CALL-1", {})  # the same CALL_ID on another portal is another call
    job = await store.jobs.by_call(pid, "CALL-1")
    assert job is not None and job.state == "queued" and job.manager_id == 7 and job.duration == 42.0
    assert await store.jobs.queue_depth() == 2


async def test_claim_gives_each_job_to_one_worker_and_expired_leases_come_back(store: Store) -> None:
    pid = (await install_portal(store)).id
    for n in range(5):
        await store.jobs.enqueue(pid, f"C{n}", {})
    claimed = await asyncio.gather(*(store.jobs.claim(f"w{n}", 60) for n in range(8)))
    ids = [j.id for j in claimed if j is not None]
    assert len(ids) == len(set(ids)) == 5
    # a worker that died: its lease runs out and the job is claimable again, state intact
    job = next(j for j in claimed if j is not None)
    assert await store.jobs.save(job.id, job.lease_owner, state="transcribing", lease_until=time.time() - 1)
    again = await store.jobs.claim("w-new", 60)
    assert again is not None and again.id == job.id and again.state == "transcribing"
    # the dead worker can no longer write
    assert not await store.jobs.save(job.id, job.lease_owner, state="done")


async def test_terminal_jobs_are_not_claimed_and_finish_time_is_set(store: Store) -> None:
    pid = (await install_portal(store)).id
    await store.jobs.enqueue(pid, "C1", {})
    job = await store.jobs.claim("w", 60)
    assert job is not None
    await store.jobs.release(job.id, "w", state="skipped", reason="call not connected")
    assert await store.jobs.claim("w", 60) is None
    done = await store.jobs.get(job.id)
    assert done is not None and done.finished_at is not None and done.reason == "call not connected"
    assert (await store.jobs.counts_by_state())["skipped"] == 1


async def test_custom_categories_and_proposals(store: Store) -> None:
    pid = (await install_portal(store)).id
    await store.categories.save(
        pid, Category(code="delivery", name="Сроки доставки", examples=["долго везти"])
    )
    await store.categories.save(pid, Category(code="delivery", name="Доставка", examples=["долго"]))
    custom = await store.categories.custom(pid)
    assert [(c.code, c.name) for c in custom] == [("delivery", "Доставка")]

    await store.categories.add_candidates(pid, None, ["нужна интеграция с 1С", "а с 1С интеграция есть?"])

    async def group(quotes: list[str]) -> list[ProposedCategory]:
        return [
            ProposedCategory(name="Интеграция с 1С", code="integration_1c", examples=quotes, size=len(quotes))
        ]

    proposals = await store.categories.regroup(pid, group)
    assert len(proposals) == 1 and proposals[0].size == 2
    # regrouping again rebuilds open proposals rather than duplicating them
    proposals = await store.categories.regroup(pid, group)
    assert len(await store.categories.proposals(pid)) == 1
    category = await store.categories.decide(
        proposals[0].id, accept=True, user_id=1, recommendation="Покажите API"
    )
    assert category is not None and category.code == "integration_1c"
    assert {c.code for c in await store.categories.custom(pid)} == {"delivery", "integration_1c"}
    assert await store.categories.proposals(pid) == []
    # decided candidates are not proposed again
    assert await store.categories.regroup(pid, group) == []


async def test_regroup_waits_for_grouping_done_elsewhere(store: Store) -> None:
    """The grouping runs outside the repo (the app's analysis executor) while the repo waits: runs
    that overlap leave one set of proposals, and a proposal decided meanwhile is not offered again."""
    pid = (await install_portal(store)).id
    await store.categories.add_candidates(pid, None, ["нет бюджета", "бюджет уже распределён"])
    gate = asyncio.Event()

    async def slow(quotes: list[str]) -> list[ProposedCategory]:
        await gate.wait()
        return [ProposedCategory(name="Бюджет", code="budget_slow", examples=quotes, size=len(quotes))]

    async def fast(quotes: list[str]) -> list[ProposedCategory]:
        return [ProposedCategory(name="Бюджет", code="budget_fast", examples=quotes, size=len(quotes))]

    waiting = asyncio.create_task(store.categories.regroup(pid, slow))
    await asyncio.sleep(0.1)  # it has read the quotes and waits for its grouping
    [fast_proposal] = await store.categories.regroup(pid, fast)
    gate.set()
    await waiting
    assert [p.code for p in await store.categories.proposals(pid)] == ["budget_slow"]

    gate.clear()
    waiting = asyncio.create_task(store.categories.regroup(pid, slow))
    await asyncio.sleep(0.1)
    [open_proposal] = await store.categories.proposals(pid)
    assert await store.categories.decide(open_proposal.id, accept=True, user_id=1) is not None
    gate.set()
    assert await waiting == []  # its objections became a category while it grouped
    assert await store.categories.proposals(pid) == []
    assert await store.categories.regroup(pid, fast) == []
    assert fast_proposal.code == "budget_fast"


async def test_deleting_a_portal_removes_its_data(store: Store) -> None:
    pid = (await install_portal(store)).id
    await store.jobs.enqueue(pid, "C1", {})
    await store.categories.save(pid, Category(code="x_custom", name="X"))
    await store.portals.delete(pid)
    assert await store.jobs.queue_depth() == 0
    assert await store.categories.custom(pid) == []
