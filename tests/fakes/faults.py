"""Fault injection for the fake portal: the switch that turns a well-behaved portal into a bad day.

Off by default. ``portal.faults.enable(FaultPlan(error_rate=0.2, timeout_rate=0.05,
expire_every=15))`` makes the fake answer a share of its REST requests with the system errors any
Bitrix24 method may return, answer some only after the client's timeout, and expire the access
tokens now and then, the way a real portal does under load. Seeded, so a failing run repeats.

The answers follow the docs, ``_includes/system-errors.md`` (linked from ``error-codes.md``):

* 503 ``QUERY_LIMIT_EXCEEDED`` "Too many requests" (``limits.md``: the request intensity limit);
* 500 ``INTERNAL_SERVER_ERROR`` "Internal server error";
* 401 ``expired_token`` "The access token provided has expired" (``settings/oauth/index.md``:
  an access token lives one hour; the app refreshes it with its refresh token).

A *timeout* is the nastier kind: the method runs (a comment is added) but the answer comes after
the client gave up, so the client cannot know it ran. Downloads (``/disk/downloadFile``) may be
answered 500 too (``download_error_rate``). The OAuth token endpoint is left alone. A test can
also pick a method whose first requests are answered late (``late_methods``): the write-back's
``batch`` then delivers its comment and tip, and the app only learns that it timed out.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class FaultPlan:
    error_rate: float = 0.0  # share of REST requests answered 503 QUERY_LIMIT_EXCEEDED or 500
    timeout_rate: float = 0.0  # share run but answered only after ``timeout_s``
    timeout_s: float = 3.0
    expire_every: int = 0  # every Nth REST request first expires all access tokens (0: never)
    download_error_rate: float = 0.0
    seed: int = 0
    # the first ``late_count`` requests of these methods (``batch``…) whose answer holds
    # ``late_if_answer_has`` run but are answered late
    late_methods: tuple[str, ...] = ()
    late_if_answer_has: str = ""
    late_count: int = 1


class Faults:
    """The middleware and its switch; ``injected`` counts what was done, by kind, out of ``seen``
    REST requests."""

    def __init__(self, expire_tokens: Callable[[], None]) -> None:
        self._expire_tokens = expire_tokens
        self.plan: FaultPlan | None = None
        self._random = random.Random(0)
        self.seen = 0
        self.injected: Counter[str] = Counter()

    def enable(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._random = random.Random(plan.seed)
        self.seen = 0

    def disable(self) -> None:
        self.plan = None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        plan = self.plan
        if plan is None:
            return await handler(request)
        if request.path.startswith("/disk/downloadFile/"):
            if self._random.random() < plan.download_error_rate:
                self.injected["download 500"] += 1
                return web.Response(status=500, text="Internal Server Error")
            return await handler(request)
        if not request.path.startswith("/rest/"):
            return await handler(request)
        self.seen += 1
        method = request.path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json").lower()
        if method in plan.late_methods and self.injected[f"late {method}"] < plan.late_count:
            response = await handler(request)  # the method runs...
            body = response.body if isinstance(response, web.Response) else None
            if isinstance(body, bytes) and plan.late_if_answer_has.encode() in body:
                self.injected[f"late {method}"] += 1
                await asyncio.sleep(plan.timeout_s)  # ...but the answer misses the client's timeout
            return response
        if plan.expire_every and self.seen % plan.expire_every == 0:
            self.injected["token expired"] += 1
            self._expire_tokens()  # this request (and every other with the old token) gets 401
        roll = self._random.random()
        if roll < plan.error_rate / 2:
            self.injected["503 QUERY_LIMIT_EXCEEDED"] += 1
            return _error(503, "QUERY_LIMIT_EXCEEDED", "Too many requests")
        if roll < plan.error_rate:
            self.injected["500 INTERNAL_SERVER_ERROR"] += 1
            return _error(500, "INTERNAL_SERVER_ERROR", "Internal server error")
        if roll < plan.error_rate + plan.timeout_rate:
            self.injected["timeout"] += 1
            response = await handler(request)  # the method runs...
            await asyncio.sleep(plan.timeout_s)  # ...but the answer misses the client's timeout
            return response
        return await handler(request)


def _error(status: int, code: str, description: str) -> web.Response:
    return web.json_response({"error": code, "error_description": description}, status=status)
