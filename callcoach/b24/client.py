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
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict
from urllib.parse import urlsplit

import aiohttp
from typing_extensions import Unpack

from callcoach.values import as_float, as_int

from .addresses import forbidden
from .auth import PortalCredentials, TokenRefresher, TokenSink, TokenSource
from .download import Downloads
from .errors import (
    B24Error,
    B24TransportError,
    ExpiredToken,
    InternalServerError,
    OperationTimeLimit,
    QueryLimitExceeded,
    error_from_response,
)
from .paging import MAX_BATCH, Paging, _as_dict
from .query import php_query
from .throttle import LeakyBucket, Throttle

log = logging.getLogger(__name__)

RequestHook = Callable[[str, float, "str | None"], None]
"""``on_request(method, seconds, error_code_or_None)``: called once per HTTP attempt."""

_READ_SUFFIXES = (".get", ".list", ".info", ".current", ".admin", ".fields", ".search")
_READ_METHODS = frozenset({"profile", "app.info", "user.current", "user.admin", "server.time", "scope"})


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


class B24Client(Paging, Downloads):
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
                detail = str(forbidden(exc) or type(exc).__name__)
                raise B24TransportError("TRANSPORT", f"{method}: {detail}") from None
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
