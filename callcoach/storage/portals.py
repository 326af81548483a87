"""Installed portals: identity, endpoints, tokens, secrets."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from callcoach.storage.db import Database, now
from callcoach.storage.schema import portals


@dataclass(frozen=True)
class Portal:
    id: int
    member_id: str
    domain: str
    mode: str
    client_endpoint: str
    server_endpoint: str
    access_token: str
    refresh_token: str
    expires_at: float
    application_token: str
    scope: str
    status: str
    ai_secret: str | None
    bot_id: int | None
    bot_event_offset: int
    last_sweep_at: float | None

    @property
    def installed(self) -> bool:
        return self.status == "installed"

    def __repr__(self) -> str:  # tokens never end up in logs or tracebacks
        return f"Portal(id={self.id}, domain={self.domain!r}, status={self.status!r})"


def _row(row: Any) -> Portal:
    m = row._mapping
    return Portal(**{f: m[f] for f in Portal.__dataclass_fields__})


class PortalRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def upsert_install(
        self,
        *,
        member_id: str,
        domain: str,
        client_endpoint: str,
        server_endpoint: str,
        access_token: str,
        refresh_token: str,
        expires_at: float,
        application_token: str,
        scope: str,
        mode: str = "app",
    ) -> Portal:
        values = dict(
            domain=domain,
            client_endpoint=client_endpoint,
            server_endpoint=server_endpoint,
            access_token=access_token,
            refresh_token=refresh_token,
            expires_at=expires_at,
            application_token=application_token,
            scope=scope,
            mode=mode,
            status="installed",
            updated_at=now(),
        )
        async with self.db.begin() as conn:
            existing = (
                await conn.execute(
                    select(portals.c.id, portals.c.ai_secret).where(portals.c.member_id == member_id)
                )
            ).first()
            if existing is None:
                await conn.execute(
                    portals.insert().values(
                        member_id=member_id, installed_at=now(), ai_secret=secrets.token_urlsafe(24), **values
                    )
                )
            else:
                if not existing.ai_secret:
                    values["ai_secret"] = secrets.token_urlsafe(24)
                await conn.execute(update(portals).where(portals.c.id == existing.id).values(**values))
            row = (await conn.execute(select(portals).where(portals.c.member_id == member_id))).one()
        return _row(row)

    async def get(self, portal_id: int) -> Portal | None:
        return await self._one(portals.c.id == portal_id)

    async def by_member(self, member_id: str) -> Portal | None:
        return await self._one(portals.c.member_id == member_id)

    async def by_domain(self, domain: str) -> Portal | None:
        return await self._one(portals.c.domain == domain)

    async def by_ai_secret(self, secret: str) -> Portal | None:
        return await self._one(portals.c.ai_secret == secret)

    async def _one(self, cond: Any) -> Portal | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(select(portals).where(cond))).first()
        return _row(row) if row else None

    async def installed(self) -> list[Portal]:
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(portals).where(portals.c.status == "installed"))).all()
        return [_row(r) for r in rows]

    async def save_tokens(
        self, member_id: str, access_token: str, refresh_token: str, expires_at: float
    ) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                update(portals)
                .where(portals.c.member_id == member_id)
                .values(
                    access_token=access_token,
                    refresh_token=refresh_token,
                    expires_at=expires_at,
                    updated_at=now(),
                )
            )

    async def set_fields(self, portal_id: int, **values: Any) -> None:
        async with self.db.begin() as conn:
            await conn.execute(
                update(portals).where(portals.c.id == portal_id).values(updated_at=now(), **values)
            )

    async def mark_uninstalled(self, portal_id: int) -> None:
        # Tokens are useless after uninstall; dropping them keeps nothing worth stealing.
        await self.set_fields(portal_id, status="uninstalled", access_token="", refresh_token="", bot_id=None)

    async def delete(self, portal_id: int) -> None:
        """Remove a portal and, through ON DELETE CASCADE, everything of it."""
        async with self.db.begin() as conn:
            await conn.execute(portals.delete().where(portals.c.id == portal_id))
