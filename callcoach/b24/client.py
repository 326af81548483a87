"""Async Bitrix24 REST client (aiohttp): OAuth app mode, inbound-webhook mode, or a fixed token.

Every method call is ``POST {endpoint}{method}`` with a JSON body; in OAuth mode the body carries
``"auth": <access token>``. Around each call:

* the shared per-portal ``LeakyBucket`` is acquired (client-side throttling);
* ``QUERY_LIMIT_EXCEEDED`` (503/429) → the bucket is marked full, back off, retry
  (up to ``max_retries``); ``OPERATION_TIME_LIMIT`` → wait until ``time.operating_reset_at``
  (capped by ``max_wait_s``) and retry;
* ``expired_token`` (401) → one shared refresh (single flight, see ``auth.py``), retry once;
* transport errors (timeout, connection) and 5xx ``INTERNAL_SERVER_ERROR``: the request may have
  run, so they are retried (``transport_retries`` times, with backoff) only for *idempotent* calls:
  by default methods that read (``*.get``, ``*.list``, ``profile``...), or when the caller passes
  ``idempotent=True``. A write (``crm.timeline.comment.add``) is not replayed unless asked for.

Tokens never reach the logs: only method names, statuses, durations and error codes are logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urljoin, urlsplit

import aiohttp
from typing_extensions import Unpack

from callcoach.values import as_float, as_int

from .auth import PortalCredentials, TokenRefresher, TokenSink, TokenSource
from .errors import (
    B24Error,
    B24TransportError,
    DownloadFailed,
    DownloadTooLarge,
    ExpiredToken,
    ForbiddenDownload,
    InternalServerError,
    NotAudio,
    OperationTimeLimit,
    QueryLimitExceeded,
    error_from_response,
)
from .query import php_query
from .throttle import LeakyBucket, Throttle

log = logging.getLogger(__name__)

MAX_BATCH = 50
PAGE_SIZE = 50

RequestHook = Callable[[str, float, "str | None"], None]
"""``on_request(method, seconds, error_code_or_None)``: called once per HTTP attempt."""

_READ_SUFFIXES = (".get", ".list", ".info", ".current", ".admin", ".fields", ".search")
_READ_METHODS = frozenset({"profile", "app.info", "user.current", "user.admin", "server.time", "scope"})


def skips_count(method: str) -> bool:
    """Whether the method's page documents ``start=-1`` (skip the COUNT): CRM lists
    (huge-data.md's crm.item.list) and user.get (its own tip)."""
    name = method.lower()
    return name == "user.get" or (name.startswith("crm.") and name.endswith(".list"))


def is_read_method(method: str) -> bool:
    name = method.lower()
    return name in _READ_METHODS or name.endswith(_READ_SUFFIXES)


@dataclass
class B24Response:
    result: Any
    total: int | None = None
    next: int | None = None
    time: dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchResult:
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, B24Error] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    nexts: dict[str, int] = field(default_factory=dict)


def _as_dict(value: Any) -> dict[str, Any]:
    # PHP serialises an empty associative array as [] : treat it as {}.
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return {}


DEFAULT_USER_AGENT = "callcoach/0.1"


class ClientOptions(TypedDict, total=False):
    """How a client behaves, whatever its mode (see ``B24Client.__init__``)."""

    throttle: Throttle | None  # shared per portal; built from rate/burst when absent
    rate: float
    burst: int
    timeout_s: float
    max_retries: int
    user_agent: str
    on_request: RequestHook | None
    max_wait_s: float
    backoff_base_s: float


class B24Client:
    """One portal, one mode. Build with ``for_portal`` (OAuth app), ``for_webhook``, or
    ``for_token`` (a fixed token, e.g. a user's own)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        endpoint: str,
        *,
        refresher: TokenRefresher | None,
        throttle: Throttle,
        timeout_s: float = 30.0,
        max_retries: int = 5,
        transport_retries: int = 2,
        max_wait_s: float = 60.0,
        backoff_base_s: float = 0.5,
        user_agent: str = DEFAULT_USER_AGENT,
        on_request: RequestHook | None = None,
        access_token: str | None = None,
    ) -> None:
        self._session = session
        self._endpoint = endpoint if endpoint.endswith("/") else endpoint + "/"
        self._refresher = refresher
        self._access_token = access_token  # a fixed token, when there is no refresher
        self.throttle = throttle
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_retries = max_retries
        self.transport_retries = transport_retries
        self.max_wait_s = max_wait_s
        self.backoff_base_s = backoff_base_s
        self.user_agent = user_agent
        self.on_request = on_request
        # method → time.operating_reset_at of its last successful response (limits.md)
        self._operating_reset: dict[str, float] = {}

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def _build(
        cls,
        session: aiohttp.ClientSession,
        endpoint: str,
        options: ClientOptions,
        *,
        refresher: TokenRefresher | None = None,
        access_token: str | None = None,
    ) -> B24Client:
        throttle = options.get("throttle") or LeakyBucket(options.get("rate", 2.0), options.get("burst", 50))
        return cls(
            session,
            endpoint,
            refresher=refresher,
            access_token=access_token,
            throttle=throttle,
            timeout_s=options.get("timeout_s", 30.0),
            max_retries=options.get("max_retries", 5),
            user_agent=options.get("user_agent", DEFAULT_USER_AGENT),
            on_request=options.get("on_request"),
            max_wait_s=options.get("max_wait_s", 60.0),
            backoff_base_s=options.get("backoff_base_s", 0.5),
        )

    @classmethod
    def for_portal(
        cls,
        session: aiohttp.ClientSession,
        creds: PortalCredentials,
        *,
        client_id: str,
        client_secret: str,
        on_tokens: TokenSink | None = None,
        stored: TokenSource | None = None,
        oauth_url: str | None = None,
        **options: Unpack[ClientOptions],
    ) -> B24Client:
        refresher = TokenRefresher(
            session,
            creds,
            client_id=client_id,
            client_secret=client_secret,
            oauth_url=oauth_url,
            on_tokens=on_tokens,
            stored=stored,
            timeout_s=options.get("timeout_s", 30.0),
            user_agent=options.get("user_agent", DEFAULT_USER_AGENT),
        )
        return cls._build(session, creds.client_endpoint, options, refresher=refresher)

    @classmethod
    def for_webhook(
        cls, session: aiohttp.ClientSession, url: str, **options: Unpack[ClientOptions]
    ) -> B24Client:
        """``url`` is the inbound webhook ``https://<portal>/rest/<user_id>/<secret>/``."""
        return cls._build(session, url, options)

    @classmethod
    def for_token(
        cls,
        session: aiohttp.ClientSession,
        endpoint: str,
        access_token: str,
        **options: Unpack[ClientOptions],
    ) -> B24Client:
        """Calls with a token someone else holds (a user's ``AUTH_ID`` from the app's page): it is
        sent as is and never refreshed, so ``expired_token`` reaches the caller as ``ExpiredToken``."""
        if not access_token:
            raise ValueError("for_token needs a token")
        return cls._build(session, endpoint, options, access_token=access_token)

    def __repr__(self) -> str:  # the webhook URL holds a secret: show the host only
        mode = "oauth" if self._refresher else "token" if self._access_token else "webhook"
        return f"B24Client({mode}, host={urlsplit(self._endpoint).netloc!r})"

    @property
    def credentials(self) -> PortalCredentials | None:
        """Current (possibly refreshed) credentials in OAuth mode."""
        return self._refresher.creds if self._refresher else None

    @property
    def endpoint_host(self) -> str:
        return urlsplit(self._endpoint).netloc

    # --- calls -----------------------------------------------------------------------------
    async def call(
        self, method: str, params: Mapping[str, Any] | None = None, *, idempotent: bool | None = None
    ) -> Any:
        return (await self.call_full(method, params, idempotent=idempotent)).result

    async def call_full(
        self, method: str, params: Mapping[str, Any] | None = None, *, idempotent: bool | None = None
    ) -> B24Response:
        replay_ok = is_read_method(method) if idempotent is None else idempotent
        limit_retries = 0
        transport_retries = 0
        refreshed = False
        while True:
            token = self._refresher.creds.access_token if self._refresher else self._access_token
            try:
                body = await self._post(method, params or {}, token)
            except ExpiredToken:
                if self._refresher is None or refreshed:
                    raise
                refreshed = True
                await self._refresher.refresh(token or "")
                continue
            except (QueryLimitExceeded, OperationTimeLimit) as exc:
                if isinstance(exc, OperationTimeLimit):
                    # settings/performance/limits.md: the reset time is the one the last
                    # successful response of this method announced in time.operating_reset_at
                    last = self._operating_reset.get(method.lower())
                    exc.reset_at = last if last and last > time.time() else exc.reset_at
                    if exc.reset_at:
                        # every process of this portal holds the method (as long as we would wait)
                        self.throttle.block(method, min(exc.reset_at, time.time() + self.max_wait_s))
                if limit_retries >= self.max_retries:
                    raise
                limit_retries += 1
                await asyncio.sleep(self._limit_wait(exc, limit_retries))
                continue
            except (B24TransportError, InternalServerError):
                if not replay_ok or transport_retries >= min(self.transport_retries, self.max_retries):
                    raise
                transport_retries += 1
                await asyncio.sleep(self._backoff(transport_retries))
                continue
            time_block = body.get("time")
            if isinstance(time_block, dict) and (reset := as_float(time_block.get("operating_reset_at"))):
                self._operating_reset[method.lower()] = reset
            return B24Response(
                result=body.get("result"),
                total=as_int(body.get("total")),
                next=as_int(body.get("next")),
                time=time_block if isinstance(time_block, dict) else {},
            )

    def _backoff(self, attempt: int) -> float:
        delay = self.backoff_base_s * (2 ** (attempt - 1))
        return min(self.max_wait_s, delay * (1 + random.random() * 0.2))

    def _limit_wait(self, exc: B24Error, attempt: int) -> float:
        if isinstance(exc, OperationTimeLimit) and exc.reset_at:
            return max(0.0, min(self.max_wait_s, exc.reset_at - time.time()))
        if isinstance(exc, QueryLimitExceeded):
            self.throttle.fill()
            # One request's worth of drain, growing on repeats.
            return min(self.max_wait_s, max(1.0 / self.throttle.rate, self._backoff(attempt)))
        return self._backoff(attempt)

    async def _post(self, method: str, params: Mapping[str, Any], token: str | None) -> dict[str, Any]:
        """One HTTP attempt; returns the decoded body or raises the typed error."""
        await self.throttle.acquire(method)
        payload = dict(params)
        if token is not None:
            payload["auth"] = token
        url = self._endpoint + method
        started = time.monotonic()
        status: int | None = None
        error_code: str | None = None
        try:
            try:
                async with self._session.post(
                    url,
                    json=payload,
                    timeout=self._timeout,
                    headers={"User-Agent": self.user_agent, "Accept": "application/json"},
                ) as resp:
                    status = resp.status
                    raw = await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                error_code = "TRANSPORT"
                raise B24TransportError("TRANSPORT", f"{method}: {type(exc).__name__}") from None
            try:
                body = _decode(raw)
            except ValueError:
                if status >= 500:
                    error_code = "INTERNAL_SERVER_ERROR"
                    raise InternalServerError(
                        "INTERNAL_SERVER_ERROR", f"{method}: HTTP {status}", status
                    ) from None
                error_code = "BAD_RESPONSE"
                raise B24TransportError(
                    "BAD_RESPONSE", f"{method}: HTTP {status}, not JSON", status
                ) from None
            if "error" in body:
                err = error_from_response(status, body)
                error_code = err.code
                raise err
            if status >= 400:
                error_code = f"HTTP_{status}"
                cls = InternalServerError if status >= 500 else B24Error
                raise cls(error_code, f"{method}: HTTP {status}", status)
            return body
        finally:
            elapsed = time.monotonic() - started
            log.debug("b24 %s status=%s error=%s in %.3fs", method, status, error_code, elapsed)
            if self.on_request is not None:
                try:
                    self.on_request(method, elapsed, error_code)
                except Exception:  # a metrics bug must not break the call
                    log.exception("on_request hook failed")

    # --- batch -----------------------------------------------------------------------------
    async def batch(
        self,
        commands: Mapping[str, tuple[str, Mapping[str, Any]]],
        *,
        halt: bool = False,
        idempotent: bool | None = None,
    ) -> BatchResult:
        """Run up to 50 commands in one request. ``$result[key][field]`` references to earlier keys
        of the *same* batch are resolved by the portal; they do not cross batches."""
        if len(commands) > MAX_BATCH:
            raise ValueError(f"a batch holds at most {MAX_BATCH} commands, got {len(commands)}")
        if not commands:
            return BatchResult()
        cmd = {
            key: f"{method}?{php_query(params)}" if params else method
            for key, (method, params) in commands.items()
        }
        if idempotent is None:
            idempotent = all(is_read_method(m) for m, _ in commands.values())
        # Nested calls count against their own methods' OPERATION_TIME_LIMIT (the outer batch does
        # not; settings/performance/limits.md): a held method holds the batch that carries it.
        for method in {m for m, _ in commands.values()}:
            await self.throttle.unblocked(method)
        response = await self.call_full(
            "batch", {"halt": 1 if halt else 0, "cmd": cmd}, idempotent=idempotent
        )
        parsed = _parse_batch(response.result)
        for key, err in parsed.errors.items():
            if isinstance(err, OperationTimeLimit) and key in commands:
                self.throttle.block(commands[key][0], time.time() + self.max_wait_s)
        return parsed

    async def batch_many(
        self, commands: Mapping[str, tuple[str, Mapping[str, Any]]], *, halt: bool = False
    ) -> BatchResult:
        """Any number of commands, 50 per request. References work only inside one chunk of 50."""
        merged = BatchResult()
        items = list(commands.items())
        for start in range(0, len(items), MAX_BATCH):
            part = await self.batch(dict(items[start : start + MAX_BATCH]), halt=halt)
            merged.results.update(part.results)
            merged.errors.update(part.errors)
            merged.totals.update(part.totals)
            merged.nexts.update(part.nexts)
            if halt and part.errors:
                break
        return merged

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

    # --- downloads -------------------------------------------------------------------------
    async def download(
        self,
        url: str,
        dest: Path,
        *,
        max_bytes: int,
        allowed_hosts: Collection[str],
        max_redirects: int = 5,
        referer: str | None = None,
        accept_language: str = "ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7",
    ) -> int:
        """Stream ``url`` to ``dest`` (temp file in the same folder, then renamed); return its size.

        The GET carries what ``settings/how-to-call-rest-api/general-principles.md`` asks for a
        signed download link: ``User-Agent``, ``Accept: */*``, ``Accept-Language`` and
        ``Referer: https://<portal>/`` (``referer``; the link's own host by default); without
        them the portal may answer the file name and an nginx 404 page. A body that is a page or
        text rather than audio is refused (``NotAudio``) and nothing is kept.

        Every hop (redirects are followed by hand) must be http(s) on a host in ``allowed_hosts``
        (``host`` or ``host:port``), else ``ForbiddenDownload``. Over ``max_bytes`` →
        ``DownloadTooLarge`` and nothing is left behind. The URL is never logged: it is signed.
        """
        allowed = {h.lower() for h in allowed_hosts}
        headers = {
            "User-Agent": self.user_agent,
            "Accept": "*/*",
            "Accept-Language": accept_language,
            "Referer": referer or f"https://{urlsplit(url).netloc}/",
        }
        current = url
        for _hop in range(max_redirects + 1):
            parts = urlsplit(current)
            host = (parts.hostname or "").lower()
            netloc = parts.netloc.rsplit("@", 1)[-1].lower()
            if (
                parts.scheme not in ("http", "https")
                or not host
                or (host not in allowed and netloc not in allowed)
            ):
                raise ForbiddenDownload("FORBIDDEN_DOWNLOAD", f"host {host or '?'} is not allowed")
            started = time.monotonic()
            try:
                async with self._session.get(
                    current,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(
                        total=None, sock_connect=self._timeout.total, sock_read=self._timeout.total
                    ),
                    headers=headers,
                ) as resp:
                    if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                        current = urljoin(current, resp.headers["Location"])
                        continue
                    if resp.status != 200:
                        raise DownloadFailed(
                            "DOWNLOAD_FAILED", f"HTTP {resp.status} from {host}", resp.status
                        )
                    declared = resp.content_length
                    if declared is not None and declared > max_bytes:
                        raise DownloadTooLarge("DOWNLOAD_TOO_LARGE", f"{declared} bytes > {max_bytes}")
                    if reason := not_audio_reason(resp.headers.get("Content-Type", ""), b""):
                        raise NotAudio("DOWNLOAD_NOT_AUDIO", reason)
                    size = await _stream_to(resp, dest, max_bytes)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise B24TransportError("TRANSPORT", f"download from {host}: {type(exc).__name__}") from None
            log.info("b24 download host=%s bytes=%d in %.3fs", host, size, time.monotonic() - started)
            return size
        raise DownloadFailed("TOO_MANY_REDIRECTS", f"more than {max_redirects} redirects")


_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml", "application/javascript")
_PAGE_STARTS = (b"<!doctype", b"<html", b"<head", b"<body", b"<?xml", b"<center", b"{", b"[")
_NOT_AUDIO_HINT = (
    " instead of the recording (an nginx 404 page? general-principles.md: the download GET needs "
    "User-Agent, Accept, Accept-Language and Referer); nothing was analysed"
)


def not_audio_reason(content_type: str, head: bytes) -> str | None:
    """Why a download is not audio (a page or text by its type or first bytes), or None."""
    kind = content_type.split(";")[0].strip().lower()
    if kind.startswith(_TEXT_TYPES):
        return f"the portal sent {kind}{_NOT_AUDIO_HINT}"
    if head.lstrip()[:16].lower().startswith(_PAGE_STARTS):
        return f"the portal sent a page or text{_NOT_AUDIO_HINT}"
    return None


async def _stream_to(resp: aiohttp.ClientResponse, dest: Path, max_bytes: int) -> int:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in resp.content.iter_chunked(64 * 1024):
                if size == 0 and (reason := not_audio_reason("", chunk)):
                    raise NotAudio("DOWNLOAD_NOT_AUDIO", reason)
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadTooLarge("DOWNLOAD_TOO_LARGE", f"more than {max_bytes} bytes")
                out.write(chunk)
        os.replace(tmp_name, dest)
    except BaseException:
        os.unlink(tmp_name)
        raise
    return size


def _decode(raw: bytes) -> dict[str, Any]:
    import json

    body = json.loads(raw)
    if not isinstance(body, dict):
        raise ValueError("not an object")
    return body


def _parse_batch(result: Any) -> BatchResult:
    block = _as_dict(result)
    out = BatchResult(results=_as_dict(block.get("result")))
    for key, err in _as_dict(block.get("result_error")).items():
        if isinstance(err, dict):
            out.errors[key] = error_from_response(None, err)
        else:
            out.errors[key] = B24Error(str(err) or "BATCH_ERROR")
    for key, total in _as_dict(block.get("result_total")).items():
        if (value := as_int(total)) is not None:
            out.totals[key] = value
    for key, nxt in _as_dict(block.get("result_next")).items():
        if (value := as_int(nxt)) is not None:
            out.nexts[key] = value
    return out
