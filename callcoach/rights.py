"""Who may see whose calls and statistics: one rule for the chat bot and the dashboard.

Rule: a manager sees his own calls; a head of department sees the calls of the people in the
departments he heads (sub-departments included); a portal administrator sees everything.

How admin-ness is learnt: callcoach acts with the installing admin's token, so ``user.admin``
only answers for that token's owner, and ``user.get`` has no documented admin field. So:
``profile`` (ID + ADMIN of the token owner: the installing admin) plus any user row that does
carry ``IS_ADMIN``/``ADMIN`` (some portals and the test double do). Heads come from
``department.get`` (UF_HEAD) and membership from ``user.get`` (UF_DEPARTMENT).

The portal's people and departments are cached per portal for a few minutes: one portal's data
never answers for another, and a change on the portal shows up after ``ttl_s`` at most.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from callcoach.b24.client import B24Client
from callcoach.b24.errors import B24Error
from callcoach.values import as_int

_TRUE = {"Y", "1", "TRUE", "YES"}


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().upper() in _TRUE


@dataclass(frozen=True)
class OrgChart:
    """A snapshot of a portal's people and departments."""

    admins: frozenset[int]
    names: dict[int, str]
    departments_of: dict[int, tuple[int, ...]]
    heads: dict[int, int]  # department id -> head user id
    parents: dict[int, int]  # department id -> parent department id

    def headed_by(self, user_id: int) -> set[int]:
        """Departments ``user_id`` heads, with all their sub-departments."""
        roots = {d for d, head in self.heads.items() if head == user_id}
        found = set(roots)
        changed = True
        while changed:
            changed = False
            for dep, parent in self.parents.items():
                if parent in found and dep not in found:
                    found.add(dep)
                    changed = True
        return found

    def find_user(self, query: str) -> list[int]:
        """Users whose id, name or last name matches ``query`` (for ``@manager``)."""
        q = query.strip().lstrip("@").strip().lower()
        if not q:
            return []
        if q.isdigit():
            return [int(q)] if int(q) in self.names else []
        exact = [uid for uid, name in self.names.items() if name.lower() == q]
        if exact:
            return exact
        return [
            uid
            for uid, name in self.names.items()
            if any(part.startswith(q) for part in name.lower().split())
        ]


@dataclass(frozen=True)
class Access:
    """What one person may see. ``managers`` None = everyone (admin)."""

    viewer: int
    is_admin: bool
    managers: frozenset[int] | None

    def can_see(self, manager_id: int | None) -> bool:
        if self.managers is None:
            return True
        return manager_id is not None and manager_id in self.managers

    @property
    def sees_others(self) -> bool:
        return self.managers is None or len(self.managers - {self.viewer}) > 0


def access_for(chart: OrgChart | None, viewer: int, *, is_admin: bool = False) -> Access:
    """What ``viewer`` may see. ``is_admin``: the portal itself said so (``user.admin`` asked with
    the viewer's own token, as the dashboard does at sign-in). Without a chart (the portal could
    not be asked) a non-admin sees his own calls only: never more than the rule allows."""
    if is_admin or (chart is not None and viewer in chart.admins):
        return Access(viewer, True, None)
    if chart is None:
        return Access(viewer, False, frozenset({viewer}))
    headed = chart.headed_by(viewer)
    team = {uid for uid, deps in chart.departments_of.items() if headed.intersection(deps)}
    return Access(viewer, False, frozenset({viewer} | team))


@dataclass
class _Entry:
    chart: OrgChart
    at: float


@dataclass
class Directory:
    """Per-portal cache of the org chart (key: portal id)."""

    ttl_s: float = 300.0
    clock: Callable[[], float] = time.monotonic
    _cache: dict[int, _Entry] = field(default_factory=dict)
    _locks: dict[int, asyncio.Lock] = field(default_factory=dict)

    async def chart(self, portal_id: int, client: B24Client) -> OrgChart:
        entry = self._cache.get(portal_id)
        if entry is not None and self.clock() - entry.at < self.ttl_s:
            return entry.chart
        lock = self._locks.setdefault(portal_id, asyncio.Lock())
        async with lock:  # one load per portal even when several messages arrive at once
            entry = self._cache.get(portal_id)
            if entry is not None and self.clock() - entry.at < self.ttl_s:
                return entry.chart
            chart = await load_chart(client)
            self._cache[portal_id] = _Entry(chart, self.clock())
            return chart

    async def access(self, portal_id: int, client: B24Client, viewer: int) -> Access:
        return access_for(await self.chart(portal_id, client), viewer)

    def forget(self, portal_id: int) -> None:
        self._cache.pop(portal_id, None)


async def load_chart(client: B24Client) -> OrgChart:
    # Each list paged as its own page says. user.get (api-reference/user/user-get.md): sort and
    # order strings, start; no filter, so fired people too: their old calls stay visible.
    users = await client.list_pages("user.get", {"sort": "ID", "order": "ASC"})
    try:
        # department.get (api-reference/departments/department-get.md) has no filter object and
        # no >ID: sort/order strings and START pages of 50. The page spells it START, the REST
        # layer's generic navigation reads start: both are sent (an unknown key is ignored).
        departments = await client.list_pages(
            "department.get", {"sort": "ID", "order": "ASC"}, start_keys=("START", "start")
        )
    except B24Error:  # no "department" scope: nobody is a head, admins still see all
        departments = []
    admins: set[int] = set()
    try:
        profile = await client.call("profile")
        if isinstance(profile, dict) and _truthy(profile.get("ADMIN")) and as_int(profile.get("ID")):
            admins.add(int(profile["ID"]))
    except B24Error:
        pass
    names: dict[int, str] = {}
    departments_of: dict[int, tuple[int, ...]] = {}
    for row in users:
        uid = as_int(row.get("ID"))
        if uid is None:
            continue
        names[uid] = " ".join(str(row.get(k) or "") for k in ("NAME", "LAST_NAME")).strip() or f"#{uid}"
        deps = row.get("UF_DEPARTMENT") or []
        departments_of[uid] = tuple(
            d for d in (as_int(x) for x in (deps if isinstance(deps, list) else [deps])) if d
        )
        if _truthy(row.get("IS_ADMIN")) or _truthy(row.get("ADMIN")):
            admins.add(uid)
    heads: dict[int, int] = {}
    parents: dict[int, int] = {}
    for row in departments:
        dep = as_int(row.get("ID"))
        if dep is None:
            continue
        head = as_int(row.get("UF_HEAD"))
        if head:
            heads[dep] = head
        parent = as_int(row.get("PARENT"))
        if parent:
            parents[dep] = parent
    return OrgChart(frozenset(admins), names, departments_of, heads, parents)
