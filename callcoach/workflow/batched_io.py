"""A call's portal I/O in as few REST requests as the portal allows (``batch``,
``settings/how-to-call-rest-api/batch.md``): at 2 requests/s a portal grants 172,800 requests a
day, so every request a call saves is calls the portal can take.

* ``lookup_call``: the statistics row, the recording's file and the activity's bindings in one
  request; the later two take their ids from the row through ``$result[row][0][…]`` references,
  which the portal fills in before it runs them (commands of one batch run in order).
* the write-back of a call (comment, layout, transcript, tip) is one batch;
* ``PortalBatcher``: lookups (or write-backs) of calls that arrive together on one portal share
  one batch (at most 50 commands).

A batch runs every command even when one fails (``halt=0``); each command answers on its own, so
a failed layout never hides a posted comment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from callcoach.b24.client import MAX_BATCH, B24Client, BatchResult
from callcoach.b24.errors import B24Error

log = logging.getLogger(__name__)

Command = tuple[str, Mapping[str, Any]]


@dataclass
class CallLookup:
    row: dict[str, Any]  # voximplant.statistic.get's row; {} when the portal has none (yet)
    file: dict[str, Any] | None = None  # disk.file.get of the row's RECORD_FILE_ID
    file_error: B24Error | None = None
    bindings: list[dict[str, Any]] | None = None  # crm.activity.binding.list; None: none asked
    bindings_error: B24Error | None = None


def _rows(value: Any) -> list[dict[str, Any]]:
    # PHP arrays may arrive as objects keyed "0", "1"…
    if isinstance(value, dict):
        value = list(value.values())
    return [r for r in value or [] if isinstance(r, dict)] if isinstance(value, list) else []


async def lookup_call(
    client: B24Client,
    call_id: str,
    activity_id: int | None,
    *,
    batcher: PortalBatcher | None = None,
    portal_key: str = "",
) -> CallLookup:
    """Everything the fetch stage reads about a finished call, in one request (shared with other
    calls' lookups when a ``batcher`` is given)."""
    commands: dict[str, Command] = {
        "row": ("voximplant.statistic.get", {"FILTER": {"CALL_ID": call_id}}),
        "file": ("disk.file.get", {"id": "$result[row][0][RECORD_FILE_ID]"}),
        # The event carries CRM_ACTIVITY_ID; a call found by the sweep has it on its row only.
        "bindings": (
            "crm.activity.binding.list",
            {"activityId": activity_id or "$result[row][0][CRM_ACTIVITY_ID]"},
        ),
    }
    if batcher is not None:
        res = await batcher.run(client, portal_key, commands)
    else:
        res = await client.batch(commands, idempotent=True)
    if "row" in res.errors:
        raise res.errors["row"]
    rows = _rows(res.results.get("row"))
    row = rows[0] if rows else {}
    out = CallLookup(row=row)
    # With no file (or no activity) on the row the reference is empty and the portal answers
    # that command with an error: that is "not there yet", not a failure.
    if row.get("RECORD_FILE_ID"):
        out.file_error = res.errors.get("file")
        file = res.results.get("file")
        out.file = file if isinstance(file, dict) else None
    if activity_id or row.get("CRM_ACTIVITY_ID"):
        out.bindings_error = res.errors.get("bindings")
        out.bindings = _rows(res.results.get("bindings")) if "bindings" in res.results else None
    return out


@dataclass
class _Pending:
    commands: dict[str, Command] = field(default_factory=dict)
    members: int = 0
    full: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Future[BatchResult] | None = None


class PortalBatcher:
    """Commands for one portal that arrive within ``linger_s`` of each other go out as one batch.

    ``run(client, portal_key, commands)`` returns this caller's own results (its keys), or raises
    what the request raised (each call then retries on its own, as a lone request would). A
    caller's ``$result[key]`` references are renamed with its keys. Reads and writes use separate
    batchers: a batch of reads may be replayed after a transport error, one with a write may not.
    """

    def __init__(self, linger_s: float = 0.25, *, idempotent: bool = False) -> None:
        self.linger_s = linger_s
        self.idempotent = idempotent
        self._open: dict[str, _Pending] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.requests = 0  # batches sent (for the bench)

    async def run(self, client: B24Client, portal_key: str, commands: Mapping[str, Command]) -> BatchResult:
        if not commands:
            return BatchResult()
        if len(commands) > MAX_BATCH:  # a call with a very long tip: on its own
            self.requests += -(-len(commands) // MAX_BATCH)
            return await client.batch_many(dict(commands))  # (references stay within a chunk)
        pending = self._open.get(portal_key)
        if pending is None or len(pending.commands) + len(commands) > MAX_BATCH:
            if pending is not None:
                pending.full.set()  # send the full one now; this call starts the next
            pending = _Pending(done=asyncio.get_running_loop().create_future())
            self._open[portal_key] = pending
            task = asyncio.create_task(self._send(client, portal_key, pending))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        prefix = f"c{pending.members}_"
        pending.members += 1
        for key, (method, params) in commands.items():
            pending.commands[prefix + key] = (method, _renamed(params, commands, prefix))
        if len(pending.commands) >= MAX_BATCH:
            pending.full.set()
        assert pending.done is not None
        merged = await asyncio.shield(pending.done)
        mine = BatchResult()
        for key in commands:
            if prefix + key in merged.results:
                mine.results[key] = merged.results[prefix + key]
            if prefix + key in merged.errors:
                mine.errors[key] = merged.errors[prefix + key]
        return mine

    async def _send(self, client: B24Client, portal_key: str, pending: _Pending) -> None:
        assert pending.done is not None
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pending.full.wait(), self.linger_s)
            if self._open.get(portal_key) is pending:
                del self._open[portal_key]
            self.requests += 1
            pending.done.set_result(await client.batch(pending.commands, idempotent=self.idempotent))
        except Exception as exc:  # every call in the batch sees what the request raised
            pending.done.set_exception(exc)
        finally:
            if not pending.done.done():  # cancelled (shutdown)
                pending.done.cancel()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _renamed(value: Any, keys: Mapping[str, Any], prefix: str) -> Any:
    """``value`` with ``$result[key]`` references to ``keys`` renamed to ``$result[<prefix>key]``."""
    if isinstance(value, str) and "$result[" in value:
        for key in keys:
            value = value.replace(f"$result[{key}]", f"$result[{prefix}{key}]")
        return value
    if isinstance(value, Mapping):
        return {k: _renamed(v, keys, prefix) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, keys, prefix) for v in value]
    return value


def keyed(step: str, commands: Sequence[Command]) -> dict[str, Command]:
    """A step's commands under batch keys ``step`` (one) or ``step_0``, ``step_1``… (several)."""
    if len(commands) == 1:
        return {step: commands[0]}
    return {f"{step}_{n}": command for n, command in enumerate(commands)}


def step_of(key: str) -> str:
    return key.split("_", 1)[0]
