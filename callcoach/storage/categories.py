"""Custom objection categories, unmatched objections (candidates) and the proposals grouped
from them. The ten standard categories live in code (callcoach.pipeline.categories)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update

from callcoach.pipeline.models import Category, ProposedCategory
from callcoach.storage.db import Database, now
from callcoach.storage.schema import candidates, categories, proposals


@dataclass(frozen=True)
class Proposal:
    id: int
    portal_id: int
    code: str
    name: str
    examples: list[str]
    size: int
    status: str


def _category(row: Any) -> Category:
    m = row._mapping
    return Category(
        code=m["code"],
        name=m["name"],
        description=m["description"],
        examples=list(m["examples"] or []),
        recommendation=m["recommendation"],
        standard=False,
    )


def _proposal(row: Any) -> Proposal:
    m = row._mapping
    return Proposal(
        id=m["id"],
        portal_id=m["portal_id"],
        code=m["code"],
        name=m["name"],
        examples=list(m["examples"] or []),
        size=m["size"],
        status=m["status"],
    )


class CategoryRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def custom(self, portal_id: int | None) -> list[Category]:
        """Active custom categories of a portal (and the server-wide ones, portal_id NULL)."""
        cond: Any = categories.c.portal_id.is_(None)
        if portal_id is not None:
            cond = cond | (categories.c.portal_id == portal_id)
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(
                    select(categories).where(cond & categories.c.active).order_by(categories.c.id)
                )
            ).all()
        return [_category(r) for r in rows]

    async def save(self, portal_id: int | None, category: Category) -> None:
        """Insert or replace a custom category by code."""
        values = dict(
            name=category.name,
            description=category.description,
            examples=list(category.examples),
            recommendation=category.recommendation,
            active=True,
        )
        scope = categories.c.portal_id.is_(None) if portal_id is None else categories.c.portal_id == portal_id
        async with self.db.begin() as conn:
            found = (
                await conn.execute(
                    select(categories.c.id).where(scope & (categories.c.code == category.code))
                )
            ).scalar()
            if found is None:
                await conn.execute(
                    categories.insert().values(
                        portal_id=portal_id, code=category.code, created_at=now(), **values
                    )
                )
            else:
                await conn.execute(update(categories).where(categories.c.id == found).values(**values))

    async def deactivate(self, portal_id: int | None, code: str) -> bool:
        scope = categories.c.portal_id.is_(None) if portal_id is None else categories.c.portal_id == portal_id
        async with self.db.begin() as conn:
            result = await conn.execute(
                update(categories).where(scope & (categories.c.code == code)).values(active=False)
            )
            return bool(result.rowcount)

    # --- candidates and proposals ------------------------------------------------------------
    async def add_candidates(self, portal_id: int, job_id: int | None, quotes: Sequence[str]) -> None:
        if not quotes:
            return
        async with self.db.begin() as conn:
            if job_id is not None:  # a retried job must not count its quotes twice
                await conn.execute(candidates.delete().where(candidates.c.job_id == job_id))
            await conn.execute(
                candidates.insert(),
                [dict(portal_id=portal_id, job_id=job_id, quote=q, created_at=now()) for q in quotes],
            )

    async def regroup(
        self,
        portal_id: int,
        group: Callable[[list[str]], Awaitable[list[ProposedCategory]]],
        *,
        min_size: int = 1,
    ) -> list[Proposal]:
        """Group the candidates not yet in a decided proposal into fresh proposals.

        Open proposals are rebuilt each time, so a proposal grows as similar objections come
        in; accepted and rejected ones keep their candidates and are not offered again.

        ``group`` is awaited between reading the quotes and writing the proposals: the caller runs
        the grouping (embeddings, CPU heavy) wherever it belongs, off the event loop; this repo
        only reads and writes. The write is one transaction that replaces whatever open proposals
        exist by then and takes only candidates still free, so a proposal decided meanwhile keeps
        its candidates (and is not offered again) and two regroups that overlap leave one set.
        """
        async with self.db.connect() as conn:
            open_ids = select(proposals.c.id).where(
                and_(proposals.c.portal_id == portal_id, proposals.c.status == "proposed")
            )
            rows = (
                await conn.execute(
                    select(candidates.c.id, candidates.c.quote).where(
                        and_(
                            candidates.c.portal_id == portal_id,
                            candidates.c.proposal_id.is_(None) | candidates.c.proposal_id.in_(open_ids),
                        )
                    )
                )
            ).all()
        quotes = [r.quote for r in rows]
        groups = [g for g in await group(quotes) if g.size >= min_size] if quotes else []
        created: list[Proposal] = []
        async with self.db.begin() as conn:
            stale = [
                r[0]
                for r in await conn.execute(
                    select(proposals.c.id).where(
                        and_(proposals.c.portal_id == portal_id, proposals.c.status == "proposed")
                    )
                )
            ]
            if stale:
                await conn.execute(
                    update(candidates).where(candidates.c.proposal_id.in_(stale)).values(proposal_id=None)
                )
                await conn.execute(proposals.delete().where(proposals.c.id.in_(stale)))
            free = {
                r[0]
                for r in await conn.execute(
                    select(candidates.c.id).where(
                        and_(candidates.c.portal_id == portal_id, candidates.c.proposal_id.is_(None))
                    )
                )
            }
            taken: set[int] = set()
            for g in groups:
                examples = set(g.examples)
                matched = [r.id for r in rows if r.quote in examples]
                if matched and free.isdisjoint(matched):  # its objections were all decided on meanwhile
                    continue
                ids = [i for i in matched if i in free and i not in taken]
                result = await conn.execute(
                    proposals.insert().values(
                        portal_id=portal_id,
                        code=g.code,
                        name=g.name,
                        examples=list(g.examples),
                        size=g.size,
                        status="proposed",
                        created_at=now(),
                    )
                )
                pid = int(result.inserted_primary_key[0])
                if ids:
                    await conn.execute(
                        update(candidates).where(candidates.c.id.in_(ids)).values(proposal_id=pid)
                    )
                    taken.update(ids)
                created.append(Proposal(pid, portal_id, g.code, g.name, list(g.examples), g.size, "proposed"))
        return created

    async def proposals(self, portal_id: int, status: str | None = "proposed") -> list[Proposal]:
        q = select(proposals).where(proposals.c.portal_id == portal_id)
        if status is not None:
            q = q.where(proposals.c.status == status)
        async with self.db.connect() as conn:
            return [_proposal(r) for r in (await conn.execute(q.order_by(proposals.c.size.desc()))).all()]

    async def proposal(self, proposal_id: int) -> Proposal | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(select(proposals).where(proposals.c.id == proposal_id))).first()
        return _proposal(row) if row else None

    async def decide(
        self, proposal_id: int, *, accept: bool, user_id: int | None, recommendation: str = ""
    ) -> Category | None:
        """Accept (the proposal becomes a custom category) or reject a proposal."""
        prop = await self.proposal(proposal_id)
        if prop is None or prop.status != "proposed":
            return None
        async with self.db.begin() as conn:
            await conn.execute(
                update(proposals)
                .where(proposals.c.id == proposal_id)
                .values(status="accepted" if accept else "rejected", decided_by=user_id, decided_at=now())
            )
        if not accept:
            return None
        category = Category(
            code=prop.code,
            name=prop.name,
            description=f"Предложено по {prop.size} возражениям клиентов",
            examples=prop.examples,
            recommendation=recommendation,
        )
        await self.save(prop.portal_id, category)
        return category
