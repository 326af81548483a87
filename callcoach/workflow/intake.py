"""Turning accepted portal events into durable work: the event row and the call job are written
in one transaction, before the portal gets its 200."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from callcoach.storage import Store
from callcoach.storage.events import EventRepo
from callcoach.storage.portals import Portal

log = logging.getLogger(__name__)

CALL_END = "ONVOXIMPLANTCALLEND"


class EventRejected(ValueError):
    """The event is authentic but unusable (e.g. a call end without CALL_ID)."""


class Intake:
    def __init__(self, store: Store, wake: Callable[[], None] | None = None) -> None:
        self.store = store
        self.wake = wake or (lambda: None)

    async def accept(self, portal: Portal, event: str, payload: Mapping[str, Any]) -> str:
        """Store the event; for a call end also create its job. Returns what happened."""
        data = payload.get("data") if isinstance(payload.get("data"), Mapping) else {}
        safe = {k: v for k, v in payload.items() if k != "auth"}  # tokens stay out of the table
        if event == CALL_END:
            call_id = str((data or {}).get("CALL_ID") or "").strip()
            if not call_id:
                raise EventRejected("ONVOXIMPLANTCALLEND without data[CALL_ID]")
            async with self.store.db.begin() as conn:
                await EventRepo.add(conn, portal.id, event, safe, processed=True)
                created = await self.store.jobs.enqueue(portal.id, call_id, dict(data or {}), conn=conn)
            if created:
                self.wake()
            return "queued" if created else "duplicate"
        async with self.store.db.begin() as conn:
            await EventRepo.add(conn, portal.id, event, safe)
        return "stored"
