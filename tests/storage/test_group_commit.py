"""Group commit: requests arriving together share one transaction, each gets its own answer only
after that transaction, and one bad item fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from callcoach.storage.group_commit import GroupCommit


async def test_concurrent_items_share_commits_and_get_their_own_answers() -> None:
    committed: list[list[int]] = []

    async def flush(items: Sequence[int]) -> list[int]:
        await asyncio.sleep(0.01)  # a commit takes a while; meanwhile more requests queue up
        committed.append(list(items))
        return [i * 10 for i in items]

    writer: GroupCommit[int, int] = GroupCommit(flush)
    results = await asyncio.gather(*(writer.submit(i) for i in range(200)))
    assert results == [i * 10 for i in range(200)]
    assert sorted(i for group in committed for i in group) == list(range(200))
    assert len(committed) < 20, "the items were not gathered into groups"
    await writer.close()


async def test_an_answer_comes_only_after_its_commit() -> None:
    gate = asyncio.Event()
    done: list[int] = []

    async def flush(items: Sequence[int]) -> list[None]:
        await gate.wait()
        done.extend(items)
        return [None for _ in items]

    writer: GroupCommit[int, None] = GroupCommit(flush)
    pending = asyncio.create_task(writer.submit(1))
    await asyncio.sleep(0.05)
    assert not pending.done()
    gate.set()
    await pending
    assert done == [1]
    await writer.close()


async def test_one_bad_item_fails_alone() -> None:
    async def flush(items: Sequence[int]) -> list[int]:
        if 13 in items:
            raise ValueError("bad row")
        return list(items)

    writer: GroupCommit[int, int] = GroupCommit(flush)
    results = await asyncio.gather(*(writer.submit(i) for i in range(20)), return_exceptions=True)
    assert isinstance(results[13], ValueError)
    assert [r for i, r in enumerate(results) if i != 13] == [i for i in range(20) if i != 13]
    await writer.close()


async def test_close_commits_what_is_queued() -> None:
    seen: list[int] = []

    async def flush(items: Sequence[int]) -> list[None]:
        await asyncio.sleep(0.01)
        seen.extend(items)
        return [None for _ in items]

    writer: GroupCommit[int, None] = GroupCommit(flush)
    tasks = [asyncio.create_task(writer.submit(i)) for i in range(10)]
    await asyncio.sleep(0)
    await writer.close()
    assert sorted(seen) == list(range(10))
    for task in tasks:
        assert task.done() and task.exception() is None


@pytest.mark.parametrize("rows", [1, 50])
async def test_intake_writes_events_and_jobs_in_one_go(tmp_path, rows: int) -> None:  # type: ignore[no-untyped-def]
    from callcoach.storage import Store
    from callcoach.workflow.intake import Intake

    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    portal = await store.portals.upsert_install(
        member_id="m1",
        domain="example.bitrix24.ru",
        client_endpoint="https://example.bitrix24.ru/rest/",
        server_endpoint="https://oauth.bitrix.info/rest/",
        access_token="a",
        refresh_token="r",
        expires_at=0,
        application_token="t",
        scope="",
    )
    intake = Intake(store, min_call_seconds=10)
    calls = [{"CALL_ID": f"c{n % (rows // 2 + 1)}", "CALL_DURATION": "60"} for n in range(rows)]
    calls.append({"CALL_ID": "missed", "CALL_FAILED_CODE": "304", "CALL_DURATION": "0"})
    outcomes = await asyncio.gather(
        *(intake.accept(portal, "ONVOXIMPLANTCALLEND", {"data": c, "auth": {"x": "y"}}) for c in calls)
    )
    distinct = len({c["CALL_ID"] for c in calls[:-1]})
    assert outcomes.count("queued") == distinct
    assert outcomes.count("duplicate") == rows - distinct
    assert outcomes[-1] == "skipped"
    assert await store.events.count() == rows + 1
    missed = await store.jobs.by_call(portal.id, "missed")
    assert missed is not None and missed.state == "skipped" and "not connected" in (missed.reason or "")
    await intake.close()
    await store.close()
