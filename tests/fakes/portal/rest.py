"""The REST entry: the leaky bucket, error injection, ``batch`` with ``$result[..]`` references,
paging, and the common methods (app.info, profile, users, departments).

A part of ``FakePortal`` (tests/fakes/portal/server.py)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from callcoach.b24.events import unflatten
from tests.fakes.portal.models import MSK, PAGE, FakeError, _Failure, _int, _match_filter, _Page, _row_key


class RestCore:
    # --- REST entry ----------------------------------------------------------------------------
    def _time_block(self, started: float, started_wall: float, reset_in: float = 0.0) -> dict[str, Any]:
        finish = time.time()
        return {
            "start": started_wall,
            "finish": finish,
            "duration": finish - started_wall,
            "processing": time.monotonic() - started,
            "date_start": datetime.fromtimestamp(started_wall, MSK).isoformat(timespec="seconds"),
            "date_finish": datetime.fromtimestamp(finish, MSK).isoformat(timespec="seconds"),
            "operating": 0,
            "operating_reset_at": int(finish + reset_in) if reset_in else int(finish) + 600,
        }

    def _bucket_admit(self) -> bool:
        # settings/performance/limits.md: a leaky bucket per portal, 2/s drain and burst 50
        now = time.monotonic()
        self._level = max(0.0, self._level - (now - self._level_at) * self.rate)
        self._level_at = now
        if self._level + 1.0 > self.burst + 1e-9:
            return False
        self._level += 1.0
        return True

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = unflatten(list(parse_qsl(request.query_string, keep_blank_values=True)))
        if request.method == "POST" and request.can_read_body:
            raw = await request.read()
            if raw.strip():
                if "json" in (request.content_type or ""):
                    body = json.loads(raw)
                    if not isinstance(body, dict):
                        raise FakeError("INVALID_REQUEST", "Body must be an object", 400)
                    params.update(body)
                else:
                    params.update(unflatten(parse_qsl(raw.decode(), keep_blank_values=True)))
        return params

    async def _rest(self, request: web.Request) -> web.Response:
        started, started_wall = time.monotonic(), time.time()
        tail = request.match_info["tail"].strip("/")
        webhook = re.fullmatch(r"(\d+)/([^/]+)/(.+)", tail)
        method = (webhook.group(3) if webhook else tail).lower()
        method = re.sub(r"\.(json|xml)$", "", method)

        def err(e: FakeError) -> web.Response:
            return web.json_response(
                {
                    "error": e.code,
                    "error_description": e.description,
                    "time": self._time_block(started, started_wall),
                },
                status=e.status,
            )

        try:
            params = await self._read_params(request)
        except (ValueError, UnicodeDecodeError):
            return err(FakeError("INVALID_REQUEST", "Malformed body", 400))
        # Auth before the limit, as the portal does.
        if webhook:
            if int(webhook.group(1)) != self.webhook_user_id or webhook.group(2) != self.webhook_secret:
                return err(FakeError("NO_AUTH_FOUND", "Wrong authorization data", 401))
            ctx = {"webhook": True, "user_id": self.webhook_user_id}
        else:
            token = params.pop("auth", None)
            if not token:
                return err(FakeError("NO_AUTH_FOUND", "Wrong authorization data", 401))
            info = self._access.get(str(token))
            if info is None:
                return err(FakeError("invalid_token", "Unable to get application by token", 401))
            if info["expired"]:
                return err(FakeError("expired_token", "The access token provided has expired.", 401))
            ctx = {"webhook": False, "user_id": info["user_id"], "token": str(token)}
        if self.enforce_limit and not self._bucket_admit():
            self.rejected.append((method, time.monotonic()))
            return err(FakeError("QUERY_LIMIT_EXCEEDED", "Too many requests", self.limit_status))
        self.requests.append((method, time.monotonic()))
        reset_in = 0.0
        try:
            failure = self._take_failure(method)
            if failure is not None:
                reset_in = failure.reset_in
                raise FakeError(failure.code, failure.description, failure.status)
            if method == "batch":
                result, extra = await self._batch(params, ctx), dict[str, Any]()
            else:
                result, extra = await self._run(method, params, ctx)
        except FakeError as e:
            return web.json_response(
                {
                    "error": e.code,
                    "error_description": e.description,
                    "time": self._time_block(started, started_wall, reset_in),
                },
                status=e.status,
            )
        body = {"result": result, **extra, "time": self._time_block(started, started_wall)}
        return web.json_response(body)

    def _take_failure(self, method: str) -> _Failure | None:
        for key in (method, "*"):
            queue = self._failures.get(key)
            if queue:
                failure = queue[0]
                failure.times -= 1
                if failure.times <= 0:
                    queue.popleft()
                return failure
        return None

    async def _run(
        self, method: str, params: dict[str, Any], ctx: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        self.calls.append((method, params))
        handler: Callable[..., Any] | None = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            raise FakeError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)
        out = handler(params, ctx)
        if asyncio.iscoroutine(out):
            out = await out
        if isinstance(out, _Page):
            return out.items, out.extra
        return out, {}

    # --- batch -----------------------------------------------------------------------------------
    _REF_RE = re.compile(r"\$result\[([^\[\]]+)\]((?:\[[^\[\]]*\])*)")

    async def _batch(self, params: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
        # settings/how-to-call-rest-api/batch.md: at most 50 commands, $result[key][field] references
        self.calls.append(("batch", params))
        cmd = params.get("cmd") or {}
        if isinstance(cmd, list):
            cmd = {str(i): v for i, v in enumerate(cmd)}
        if len(cmd) > 50:
            raise FakeError("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded", 400)
        halt = str(params.get("halt", "0")) in ("1", "true", "True")
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        totals: dict[str, Any] = {}
        nexts: dict[str, Any] = {}
        for key, line in cmd.items():
            method, _, query = str(line).partition("?")

            def resolve(m: re.Match[str]) -> str:
                value: Any = results.get(m.group(1))
                for part in re.findall(r"\[([^\[\]]*)\]", m.group(2)):
                    if isinstance(value, list) and part.isdigit() and int(part) < len(value):
                        value = value[int(part)]
                    elif isinstance(value, dict) and part in value:
                        value = value[part]
                    else:
                        return ""  # unresolved reference → empty string
                return "" if value is None or isinstance(value, (dict, list)) else str(value)

            query = self._REF_RE.sub(resolve, query)
            sub = unflatten(parse_qsl(query, keep_blank_values=True))
            try:
                if method.lower() == "batch":
                    raise FakeError("ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage")
                # fail_next(method) reaches nested commands too: the portal runs them as separate
                # methods, each with its own errors and its own OPERATION_TIME_LIMIT
                # (settings/performance/limits.md, "An external call to batch is not accounted...").
                nested = self._failures.get(method.lower())
                if nested:
                    failure = nested[0]
                    failure.times -= 1
                    if failure.times <= 0:
                        nested.popleft()
                    raise FakeError(failure.code, failure.description, failure.status)
                result, extra = await self._run(method.lower(), sub, ctx)
            except FakeError as e:
                errors[key] = {"error": e.code, "error_description": e.description}
                if halt:
                    break
                continue
            results[key] = result
            if "total" in extra:
                totals[key] = extra["total"]
            if "next" in extra:
                nexts[key] = extra["next"]
        # PHP encodes empty associative arrays as [].
        return {
            "result": results or [],
            "result_error": errors or [],
            "result_total": totals or [],
            "result_next": nexts or [],
            "result_time": [],
        }

    # --- paging helper -----------------------------------------------------------------------------
    @staticmethod
    def _page(rows: list[dict[str, Any]], start: Any) -> _Page:
        s = _int(start, 0) or 0
        if s == -1:
            return _Page(rows[:PAGE], {})
        s = max(0, s)
        chunk = rows[s : s + PAGE]
        extra: dict[str, Any] = {"total": len(rows)}
        if s + PAGE < len(rows):
            extra["next"] = s + PAGE
        return _Page(chunk, extra)

    @staticmethod
    def _sorted(
        rows: list[dict[str, Any]], order: Any, sort: Any = None, direction: Any = None
    ) -> list[dict[str, Any]]:
        keys: list[tuple[str, bool]] = []
        if isinstance(order, dict):
            keys = [(str(k).upper(), str(v).upper() == "DESC") for k, v in order.items()]
        elif sort:
            keys = [(str(sort).upper(), str(direction or "ASC").upper() == "DESC")]
        for key, desc in reversed(keys):
            rows = sorted(rows, key=partial(_row_key, key), reverse=desc)
        return rows

    @staticmethod
    def _filter_of(params: Mapping[str, Any]) -> dict[str, Any]:
        flt = params.get("filter", params.get("FILTER")) or {}
        return dict(flt) if isinstance(flt, dict) else {}

    def _require_app(self, ctx: Mapping[str, Any], method: str) -> None:
        if ctx.get("webhook"):
            raise FakeError("WRONG_AUTH_TYPE", f"Current authorization type is denied for {method}", 403)

    def _require_admin(self, ctx: Mapping[str, Any]) -> None:
        user = self.users.get(int(ctx.get("user_id") or 0))
        if user is None or not user.is_admin:
            raise FakeError("ACCESS_DENIED", "Access denied! Administrator access required", 403)

    # --- common methods ----------------------------------------------------------------------------
    def m_app_info(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/common/system/app-info.md; INSTALLED is false until installFinish
        # (settings/app-installation/installation-finish.md)
        self._require_app(ctx, "app.info")
        return {
            "ID": 7,
            "CODE": self.client_id,
            "VERSION": 1,
            "STATUS": "L",
            "INSTALLED": self.app_installed,
            "PAYMENT_EXPIRED": "N",
            "DAYS": None,
            "LANGUAGE_ID": "ru",
            "LICENSE": "ru_project",
        }

    def m_profile(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/common/users/profile.md
        user = self.users[int(ctx["user_id"])]
        return {"ID": str(user.id), "ADMIN": user.is_admin, "NAME": user.name, "LAST_NAME": user.last_name}

    def m_user_current(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/user/user-current.md
        return self.users[int(ctx["user_id"])].row()

    def m_user_admin(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/common/users/user-admin.md
        return self.users[int(ctx["user_id"])].is_admin

    # user.add's fields: what user.get filters on when given at the top level without FILTER
    _USER_FIELDS = frozenset(
        {"ID", "ACTIVE", "NAME", "LAST_NAME", "EMAIL", "UF_DEPARTMENT", "IS_ONLINE", "USER_TYPE"}
    )

    def m_user_get(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        """api-reference/user/user-get.md: ``sort`` and ``order`` strings, ``FILTER`` (with the
        ``>``, ``>=``, ``<``, ``<=``, ``@``, ``!``, ``%`` prefixes), ``start`` (pages of 50; -1
        skips the count, the page's tip), by default ascending ID. The page's own examples write
        SORT/ORDER and a top-level ``UF_DEPARTMENT``: keys are read case-insensitively and, without
        FILTER, the top-level user fields filter. Anything else (an ``order`` object) is ignored."""
        q = {str(k).upper(): v for k, v in p.items()}
        flt = q.get("FILTER")
        if isinstance(flt, dict):
            flt = dict(flt)
        else:
            flt = {k: v for k, v in q.items() if k.lstrip("><=!@%") in self._USER_FIELDS}
        rows = [u.row() for u in sorted(self.users.values(), key=lambda u: u.id)]
        rows = [r for r in rows if _match_filter(r, flt)]
        sort, order = q.get("SORT"), q.get("ORDER")
        if isinstance(sort, str) and sort:
            rows = self._sorted(rows, None, sort, order if isinstance(order, str) else "ASC")
        return self._page(rows, q.get("START"))

    _DEPARTMENT_FILTERS = ("ID", "NAME", "SORT", "PARENT", "UF_HEAD")

    def m_department_get(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        """api-reference/departments/department-get.md, exactly: ``sort`` (a field name) and
        ``order`` (ASC|DESC) strings; filters ``ID``, ``NAME`` (the full name), ``SORT``,
        ``PARENT``, ``UF_HEAD`` at the top level; ``START`` pages of 50 ((N-1)*50). No filter
        object and no ``>ID``: like the real portal, an unknown key is ignored."""
        flt = {k: p[k] for k in self._DEPARTMENT_FILTERS if k in p}
        rows = [d.row() for d in sorted(self.departments.values(), key=lambda d: d.id)]
        rows = [r for r in rows if _match_filter(r, flt)]
        sort, order = p.get("sort"), p.get("order")
        if isinstance(sort, str) and sort.upper() in self._DEPARTMENT_FILTERS:
            rows = self._sorted(rows, None, sort, order if isinstance(order, str) else "ASC")
        return self._page(rows, p.get("START"))
