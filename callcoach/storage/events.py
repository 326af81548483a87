"""Accepted portal events, stored before the portal gets its 200."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from callcoach.storage.db import Database, now
from callcoach.storage.schema import events


class EventRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    async def add(
        conn: AsyncConnection, portal_id: int, event: str, payload: dict[str, Any], *, processed: bool = False
    ) -> int:
        """Store an event; ``processed`` when its work is created in the same transaction."""
        t = now()
        result = await conn.execute(
            events.insert().values(
                portal_id=portal_id,
                event=event,
                payload=payload,
                received_at=t,
                processed_at=t if processed else None,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    async def count(self, portal_id: int | None = None) -> int:
        query = select(func.count()).select_from(events)
        if portal_id is not None:
            query = query.where(events.c.portal_id == portal_id)
        async with self.db.connect() as conn:
            return int((await conn.execute(query)).scalar_one())
