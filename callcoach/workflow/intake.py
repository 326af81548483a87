"""Turning accepted portal events into durable work: the event row and the call job are written
in one transaction, before the portal gets its 200.

Bitrix24 does not deliver an event again when it could not deliver it, so the acknowledgement must
be both durable and fast under a burst of call ends. Each request hands its event to one writer
(``GroupCommit``): the events that arrive together go into one transaction, and every request is
answered once that transaction has committed. Nothing else happens on this path: the job runner
is only woken, the analysis runs elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from callcoach.storage import Store
from callcoach.storage.group_commit import GroupCommit
from callcoach.storage.intake_log import IntakeLog
from callcoach.storage.portal_cache import VerificationPortals
from callcoach.storage.portals import Portal
from callcoach.workflow.call_flow import skip_reason

log = logging.getLogger(__name__)

CALL_END = "ONVOXIMPLANTCALLEND"


class EventRejected(ValueError):
    """The event is authentic but unusable (e.g. a call end without CALL_ID)."""


@dataclass(frozen=True)
class AcceptedEvent:
    """One event on its way to the database; ``call_id`` is set for a call end."""

    portal_id: int
    event: str
    payload: dict[str, Any]
    call_id: str | None = None
    call: dict[str, Any] | None = None


class Intake:
    def __init__(
        self, store: Store, wake: Callable[[], None] | None = None, *, min_call_seconds: float = 10
    ) -> None:
        self.store = store
        self.min_call_seconds = min_call_seconds
        self.wake = wake or (lambda: None)
        self.writer: GroupCommit[AcceptedEvent, str] = GroupCommit(self._write)
        self.log = IntakeLog(store.db, store.jobs)
        self.portals = VerificationPortals(store.db)  # the look-ups of event verification

    async def accept(self, portal: Portal, event: str, payload: Mapping[str, Any]) -> str:
        """Store the event; for a call end also create its job. Returns what happened:
        ``queued``, ``skipped`` (a missed or short call: settled here, no analysis), ``duplicate``
        (a job for that call exists) or ``stored``."""
        data = payload.get("data") if isinstance(payload.get("data"), Mapping) else {}
        safe = {k: v for k, v in payload.items() if k != "auth"}  # tokens stay out of the table
        if event == CALL_END:
            raw_id = (data or {}).get("CALL_ID")
            if raw_id is not None and not isinstance(raw_id, (str, int)):
                raise EventRejected("data[CALL_ID] must be text")
            call_id = str(raw_id or "").strip()
            if not call_id:
                raise EventRejected("ONVOXIMPLANTCALLEND without data[CALL_ID]")
            if len(call_id) > 128:  # the column's width; a real CALL_ID is ~40 characters
                raise EventRejected("data[CALL_ID] is longer than 128 characters")
            outcome = await self.writer.submit(
                AcceptedEvent(portal.id, event, safe, call_id, dict(data or {}))
            )
            if outcome == "queued":
                self.wake()
            return outcome
        return await self.writer.submit(AcceptedEvent(portal.id, event, safe))

    async def _write(self, batch: Sequence[AcceptedEvent]) -> list[str]:
        skips = [
            skip_reason(e.call or {}, self.min_call_seconds) if e.call_id is not None else None for e in batch
        ]
        calls = [
            (e.portal_id, e.call_id, e.call or {}, skip)
            for e, skip in zip(batch, skips, strict=True)
            if e.call_id is not None
        ]
        created = await self.log.write(
            [(e.portal_id, e.event, e.payload, e.call_id is not None) for e in batch], calls
        )
        outcomes = []
        for e, skip in zip(batch, skips, strict=True):
            if e.call_id is None:
                outcomes.append("stored")
            elif (e.portal_id, e.call_id) in created:
                created.discard((e.portal_id, e.call_id))  # a second delivery in the same group
                outcomes.append("skipped" if skip else "queued")
            else:
                outcomes.append("duplicate")
        return outcomes

    async def close(self) -> None:
        await self.writer.close()
        await self.log.close()
