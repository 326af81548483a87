"""Group commit: one writer task gathers the writes that arrive together into one transaction and
releases every waiting request when that transaction has committed.

Why: a transaction per request makes concurrent requests fight for the database's write lock
(SQLite has one writer; its busy handler sleeps in growing steps, which is where acknowledgements
of seconds came from), and every commit pays its own round trips. With one writer, requests that
arrive while a commit is in flight simply join the next one, so the commit rate adapts to the load
and an acknowledgement costs about one commit, whatever the rate. This is the classic design of
database logs (PostgreSQL's and InnoDB's group commit).

A request is answered only after its transaction committed, so an acknowledged write is durable
in the database's own sense (see ``storage.db`` for what SQLite's ``synchronous`` setting means
there). When a group fails, its items are retried one by one, so one bad item fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

Flush = Callable[[Sequence[T]], Awaitable[Sequence[R]]]
"""Writes a group in one transaction and returns one result per item, in order."""


class GroupCommit(Generic[T, R]):
    def __init__(self, flush: Flush[T, R], *, max_group: int = 500) -> None:
        self._flush = flush
        self.max_group = max_group
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] | None = None
        self._writer: asyncio.Task[None] | None = None
        self.groups = 0  # commits made (for the bench and the tests)
        self.items = 0

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait until the transaction holding it has committed."""
        if self._queue is None or self._writer is None or self._writer.done():
            # started lazily, inside the loop that serves the requests
            self._queue = asyncio.Queue()
            self._writer = asyncio.create_task(self._run(self._queue), name="group-commit")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        return await future

    async def _run(self, queue: asyncio.Queue[tuple[T, asyncio.Future[R]]]) -> None:
        while True:
            group = [await queue.get()]
            while len(group) < self.max_group and not queue.empty():
                group.append(queue.get_nowait())
            try:
                await self._commit(group)
            finally:
                for _ in group:
                    queue.task_done()

    async def _commit(self, group: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._flush([item for item, _ in group])
        except asyncio.CancelledError:
            for _, future in group:
                if not future.done():
                    future.cancel()
            raise
        except Exception as exc:
            if len(group) == 1:
                if not group[0][1].done():
                    group[0][1].set_exception(exc)
                return
            log.warning("a group of %d writes failed; writing them one by one", len(group))
            for one in group:
                await self._commit([one])
            return
        self.groups += 1
        self.items += len(group)
        for (_, future), result in zip(group, results, strict=True):
            if not future.done():  # the request may have gone (client hung up): nothing to tell
                future.set_result(result)

    async def close(self) -> None:
        """Let the queued writes commit, then stop the writer."""
        if self._writer is None:
            return
        if self._queue is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._queue.join(), 10)
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._writer
        self._writer = None
