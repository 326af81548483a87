"""Lists of any length, a part of ``B24Client``: ``list_all``/``iter_all`` walk a list method by
ID (pages chained inside batches, without counting where the method allows it), ``iter_pages``/
``list_pages`` by its documented ``start`` pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from .errors import B24Error

if TYPE_CHECKING:
    from .client import B24Response, BatchResult


MAX_BATCH = 50
PAGE_SIZE = 50


def skips_count(method: str) -> bool:
    """Whether the method's page documents ``start=-1`` (skip the COUNT): CRM lists
    (huge-data.md's crm.item.list) and user.get (its own tip)."""
    name = method.lower()
    return name == "user.get" or (name.startswith("crm.") and name.endswith(".list"))


def _as_dict(value: Any) -> dict[str, Any]:
    # PHP serialises an empty associative array as [] : treat it as {}.
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return {}


class Paging:
    if TYPE_CHECKING:  # what the lists use of B24Client

        async def call(
            self, method: str, params: Mapping[str, Any] | None = None, *, idempotent: bool | None = None
        ) -> Any: ...

        async def call_full(
            self, method: str, params: Mapping[str, Any] | None = None, *, idempotent: bool | None = None
        ) -> B24Response: ...

        async def batch(
            self,
            commands: Mapping[str, tuple[str, Mapping[str, Any]]],
            *,
            halt: bool = False,
            idempotent: bool | None = None,
        ) -> BatchResult: ...

    # --- lists -----------------------------------------------------------------------------
    async def list_all(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        id_field: str = "ID",
        result_key: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        return [
            item
            async for item in self.iter_all(
                method, params, id_field=id_field, result_key=result_key, limit=limit
            )
        ]

    async def iter_all(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        id_field: str = "ID",
        result_key: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every item of a list method, in ascending ``id_field`` order, without counting.

        Pages are keyed by ``filter[>ID]=<last id>`` (with ``start=-1``, the portal skipping the
        COUNT, where the method's page allows it). The first page is a plain call; following
        pages are chained inside batches (``$result[pN][49][ID]``) of 2, 4, 8... up to 50 pages,
        so 1,000 items cost 5 requests.
        A page shorter than 50 ends the list; results after it in the same batch are ignored.
        Upper-case methods (``voximplant.statistic.get``: FILTER/SORT/ORDER) are detected from
        ``params`` keys or the method name.
        """
        base = dict(params or {})
        upper = "FILTER" in base or "SORT" in base or method.lower() == "voximplant.statistic.get"
        filter_key = "FILTER" if upper else "filter"
        user_filter = dict(base.pop(filter_key, None) or {})
        base.pop("start", None)
        if upper:
            base["SORT"] = id_field
            base["ORDER"] = "ASC"
            base.pop("order", None)
        else:
            base["order"] = {id_field: "ASC"}
        id_path = f"[{result_key}]" if result_key else ""

        # start=-1 (no COUNT) only where the method's own page allows it
        # (settings/performance/huge-data.md); voximplant.statistic.get's page documents start
        # as pages of 50 only, so it gets the default first page of what is left
        skip_count = {"start": -1} if skips_count(method) else {}

        def page_params(after: Any) -> dict[str, Any]:
            flt = dict(user_filter)
            if after is not None:
                flt[f">{id_field}"] = after
            return {**base, filter_key: flt, **skip_count}

        def items_of(result: Any) -> list[dict[str, Any]]:
            if result_key:
                result = _as_dict(result).get(result_key, [])
            if isinstance(result, dict):
                result = list(result.values())
            return [r for r in (result or []) if isinstance(r, dict)]

        produced = 0
        seen: set[Any] = set()
        first = await self.call(method, page_params(None), idempotent=True)
        pages = [items_of(first)]
        chunk = 2
        while True:
            for got in pages:
                fresh = [item for item in got if item.get(id_field) not in seen]
                for item in fresh:
                    seen.add(item.get(id_field))
                    yield item
                    produced += 1
                    if limit is not None and produced >= limit:
                        return
                # a page with nothing new: the method ignores the >ID filter (not this method's
                # paging, see iter_pages); stop rather than ask for the same page forever
                if len(got) < PAGE_SIZE or not fresh:
                    return
            # Every page so far was full: chain the next ones in one batch.
            last_id = pages[-1][-1].get(id_field)
            if last_id is None:
                raise B24Error("BAD_LIST", f"{method}: items have no {id_field!r} to page by")
            size = chunk
            if limit is not None:
                size = max(1, min(size, -(-(limit - produced) // PAGE_SIZE)))
            commands: dict[str, tuple[str, Mapping[str, Any]]] = {"p0": (method, page_params(last_id))}
            for n in range(1, size):
                ref = f"$result[p{n - 1}]{id_path}[{PAGE_SIZE - 1}][{id_field}]"
                commands[f"p{n}"] = (method, page_params(ref))
            res = await self.batch(commands, idempotent=True)
            pages = []
            for n in range(size):
                key = f"p{n}"
                if key in res.errors:
                    raise res.errors[key]
                got = items_of(res.results.get(key))
                pages.append(got)
                if len(got) < PAGE_SIZE:
                    break
            chunk = min(MAX_BATCH, chunk * 2)

    async def iter_pages(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        start_keys: tuple[str, ...] = ("start",),
        id_field: str = "ID",
        max_pages: int = 2000,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every item of a list method paged the way its own page documents: ``start`` (or the
        method's spelling of it, e.g. department.get's ``START``) = 0, 50, 100... with whatever
        sort and filter ``params`` hold, untouched. When the first page tells the ``total``, the
        other pages go in batches of up to 50 (one request each for the portal's limit).
        Stops on a short page, a page without ``next``, or a page with nothing new (a portal
        ignoring the paging key would otherwise answer page one forever); ``max_pages`` bounds it
        whatever the portal does."""
        base = dict(params or {})
        seen: set[Any] = set()

        def page(start: int) -> dict[str, Any]:
            return {**base, **{key: start for key in start_keys}}

        def fresh_of(result: Any) -> tuple[list[dict[str, Any]], int]:
            if isinstance(result, dict):
                result = list(result.values())
            items = [r for r in (result or []) if isinstance(r, dict)]
            fresh = []
            for item in items:
                key = item.get(id_field, id(item))
                if key not in seen:
                    seen.add(key)
                    fresh.append(item)
            return fresh, len(items)

        first = await self.call_full(method, page(0), idempotent=True)
        fresh, size = fresh_of(first.result)
        for item in fresh:
            yield item
        if not fresh or size < PAGE_SIZE or first.next is None:
            return
        step = first.next if first.next > 0 else PAGE_SIZE
        if first.total is not None:
            starts = list(range(step, min(first.total, step * max_pages), step))
            for chunk in range(0, len(starts), MAX_BATCH):
                part = starts[chunk : chunk + MAX_BATCH]
                res = await self.batch({f"p{s}": (method, page(s)) for s in part}, idempotent=True)
                for s in part:
                    if f"p{s}" in res.errors:
                        raise res.errors[f"p{s}"]
                    fresh, size = fresh_of(res.results.get(f"p{s}"))
                    for item in fresh:
                        yield item
                    if not fresh or size < PAGE_SIZE:
                        return
            return
        start = step
        for _ in range(max_pages):
            response = await self.call_full(method, page(start), idempotent=True)
            fresh, size = fresh_of(response.result)
            for item in fresh:
                yield item
            if not fresh or size < PAGE_SIZE or response.next is None:
                return
            start = response.next if response.next > start else start + PAGE_SIZE

    async def list_pages(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        start_keys: tuple[str, ...] = ("start",),
        id_field: str = "ID",
    ) -> list[dict[str, Any]]:
        return [
            item async for item in self.iter_pages(method, params, start_keys=start_keys, id_field=id_field)
        ]
