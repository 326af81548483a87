"""Group commit: requests arriving together share one transaction, each gets its own answer only
after that transaction, and one bad item fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

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
