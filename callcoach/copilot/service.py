"""The CoPilot completions endpoint's work: check a request, answer it later through its callbacks.

Bitrix24 POSTs a completion request to ``completions_url`` and gives up unless it gets HTTP 202
within 5 s, so ``CopilotService.accept`` only checks the request and schedules the work; the answer
is POSTed later to the request's ``callbackUrl`` (or a failure to ``errorCallbackUrl``, which makes
the portal refund the user's quota).

Rules this module keeps:

* Each accepted request is called back exactly once: the answer to ``callbackUrl`` or the failure
  to ``errorCallbackUrl``, never both. A callback POST is retried (network errors, 429, 5xx) but
  a failed answer delivery does not fall back to the error callback - the portal may already have
  taken the answer, and a refund for a delivered answer would be wrong.
* ``ttl`` (seconds from receipt) is the portal's deadline: after it the portal has dropped the
  request and its callback URLs are no longer valid. Work still running then is cancelled and
  nothing is called back, neither the answer (it would not be shown) nor the error callback.
* Callback URLs must point at the portal's own host (from the per-portal secret); anything else is
  refused with 400 before any work starts, so the endpoint cannot be used to make us POST elsewhere.
* ``auth`` (the portal's tokens) is accepted and never logged; prompts are logged by length only.
* On shutdown (``close``) requests still running get a best-effort 503 error callback, so their
  users are refunded instead of waiting for the ttl.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from callcoach.llm.base import ChatMessage, LLMBackend, LLMError, LLMRequest

log = logging.getLogger(__name__)

NO_LLM_MESSAGE = "callcoach has no language model configured (CALLCOACH_LLM=none)"
SHUTDOWN_MESSAGE = "callcoach is shutting down; please try again"


# --- the completion request ------------------------------------------------------------------


class ContextMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: str = "user"
    content: str


class CompletionRequest(BaseModel):
    """The body Bitrix24 POSTs to ``completions_url`` (only the fields we use are checked)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    prompt: str = Field(min_length=1)
    payload_role: str | None = None
    context: list[ContextMessage] = Field(default_factory=list)
    collect_context: bool = False
    max_tokens: int | None = Field(default=None, ge=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    ttl: float | None = Field(default=None, ge=0)
    callback_url: str = Field(alias="callbackUrl", min_length=1)
    error_callback_url: str = Field(alias="errorCallbackUrl", min_length=1)
    category: str | None = None
    # The portal's tokens: kept out of repr and dumps so they cannot reach a log line.
    auth: Any = Field(default=None, repr=False, exclude=True)

    @field_validator("payload_role", "max_tokens", "temperature", "ttl", "category", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        # Form-encoded bodies carry unset values as empty strings.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("context", mode="before")
    @classmethod
    def _context_list(cls, value: object) -> object:
        if value is None or value == "":
            return []
        if isinstance(value, Mapping):  # {"0": {...}, "1": {...}} from a PHP-style form
            return [value[key] for key in sorted(value, key=lambda k: (len(str(k)), str(k)))]
        return value

    @field_validator("collect_context", mode="before")
    @classmethod
    def _flag(cls, value: object) -> object:
        return False if value is None or value == "" else value

    def to_llm_request(self) -> LLMRequest:
        """payload_role -> system, context (only when collect_context) -> earlier turns, prompt -> user."""
        messages = [
            ChatMessage("assistant" if m.role == "assistant" else "user", m.content)
            for m in (self.context if self.collect_context else [])
            if m.content.strip()
        ]
        messages.append(ChatMessage("user", self.prompt))
        return LLMRequest(
            system=self.payload_role or None,
            messages=messages,
            max_tokens=self.max_tokens or None,
            temperature=self.temperature,
        )


@dataclass(frozen=True, slots=True)
class CopilotPortal:
    """The portal a completions secret belongs to. ``domain`` is its host, e.g.
    ``example.bitrix24.ru`` (a ``host:port`` or a URL is accepted too)."""

    member_id: str
    domain: str


PortalLookup = Callable[[str], Awaitable[CopilotPortal | None]]


@dataclass
class CopilotStats:
    """Counters for one service (metrics read them; tests assert on them)."""

    accepted: int = 0
    answered: int = 0
    failed: int = 0  # error callback sent
    expired: int = 0  # ttl passed; nothing called back
    undelivered: int = 0  # a callback POST failed after all tries


@dataclass(eq=False)
class _Job:
    id: str
    portal: CopilotPortal
    request: CompletionRequest
    deadline: float | None  # event-loop time, None = no ttl given
    settled: bool = False  # a callback (answer or error) has been started


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": code, "error_description": message}


class CopilotService:
    def __init__(
        self,
        llm: LLMBackend | None,
        session: aiohttp.ClientSession,
        lookup: PortalLookup,
        *,
        max_concurrency: int = 8,
        callback_attempts: int = 3,
        callback_backoff_s: float = 1.0,
        callback_timeout_s: float = 15.0,
    ) -> None:
        self._llm = llm
        self._session = session
        self._lookup = lookup
        self._limit = asyncio.Semaphore(max_concurrency)
        self._callback_attempts = max(1, callback_attempts)
        self._callback_backoff_s = callback_backoff_s
        self._callback_timeout_s = callback_timeout_s
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self.stats = CopilotStats()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def accept(self, secret: str | None, body: Mapping[str, Any] | None) -> tuple[int, dict[str, Any]]:
        """Check one completion request and schedule it; returns (HTTP status, JSON body).

        401 unknown secret, 400 bad body or foreign callback host, 503 shutting down or the
        portal store failing, 202 ``{"result": "OK"}`` when the work is scheduled. ``body`` None
        means it could not be parsed.
        """
        if not secret:
            return _error(401, "unauthorized", "the completions URL carries no secret")
        try:
            portal = await self._lookup(secret)
        except Exception:
            log.exception("copilot: portal lookup failed")
            return _error(503, "unavailable", "try again later")
        if portal is None:
            return _error(401, "unauthorized", "unknown secret")
        if body is None or not isinstance(body, Mapping):
            return _error(400, "invalid_request", "the body is not a JSON object or a form")
        try:
            request = CompletionRequest.model_validate(dict(body))
        except ValidationError as exc:
            # loc and msg only: the input values may include the portal's tokens
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()
            )
            return _error(400, "invalid_request", problems)
        for field_name, url in (
            ("callbackUrl", request.callback_url),
            ("errorCallbackUrl", request.error_callback_url),
        ):
            if not url_on_portal(url, portal.domain):
                log.warning(
                    "copilot: %s refused, not on the portal's host (member %s)", field_name, portal.member_id
                )
                return _error(400, "invalid_request", f"{field_name} must point at the portal's own host")
        if self._closing:
            return _error(503, "unavailable", "the service is shutting down")

        loop = asyncio.get_running_loop()
        job = _Job(
            id=secrets.token_hex(4), portal=portal, request=request, deadline=_deadline(request.ttl, loop)
        )
        task = asyncio.create_task(self._run(job), name=f"copilot-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.stats.accepted += 1
        log.info(
            "copilot %s: accepted for member %s (prompt %d chars, %d context messages, ttl %s)",
            job.id,
            portal.member_id,
            len(request.prompt),
            len(request.context),
            request.ttl,
        )
        return 202, {"result": "OK"}

    # --- background work ---

    async def _run(self, job: _Job) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self._llm is None:
                await self._fail(job, 503, NO_LLM_MESSAGE)
                return
            deadline = asyncio.timeout_at(job.deadline)
            try:
                async with deadline, self._limit:
                    text = await self._llm.complete(job.request.to_llm_request())
            except TimeoutError:
                if not deadline.expired():
                    raise
                self.stats.expired += 1
                log.warning(
                    "copilot %s: ttl of %s s passed before the answer; dropped", job.id, job.request.ttl
                )
                return
            except LLMError as exc:
                log.warning("copilot %s: %s failed: %s", job.id, self._llm.name, exc)
                await self._fail(job, exc.code if 400 <= exc.code <= 599 else 503, exc.message)
                return
            await self._deliver(job, job.request.callback_url, {"result": text}, ok=True)
        except asyncio.CancelledError:
            if not job.settled and (job.deadline is None or loop.time() < job.deadline):
                job.settled = True
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        self._post(job.request.error_callback_url, _error_body(503, SHUTDOWN_MESSAGE)), 2.0
                    )
            raise
        except Exception:
            log.exception("copilot %s: unexpected failure", job.id)
            if not job.settled:
                await self._fail(job, 500, "internal error in callcoach")

    async def _fail(self, job: _Job, code: int, message: str) -> None:
        await self._deliver(job, job.request.error_callback_url, _error_body(code, message), ok=False)

    async def _deliver(self, job: _Job, url: str, payload: dict[str, Any], *, ok: bool) -> None:
        """POST one callback, retrying transient failures while the ttl allows."""
        job.settled = True
        loop = asyncio.get_running_loop()
        kind = "answer" if ok else "error"
        for attempt in range(1, self._callback_attempts + 1):
            if job.deadline is not None and loop.time() >= job.deadline:
                self.stats.expired += 1
                log.warning("copilot %s: ttl passed before the %s callback was delivered", job.id, kind)
                return
            try:
                status = await self._post(url, payload)
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, problem = 0, repr(exc)
            else:
                problem = f"HTTP {status}"
                if 200 <= status < 300:
                    if ok:
                        self.stats.answered += 1
                    else:
                        self.stats.failed += 1
                    log.info("copilot %s: %s delivered", job.id, kind)
                    return
            if status and status < 500 and status not in (408, 429):
                break  # the portal refused it; sending the same again will not help
            if attempt < self._callback_attempts:
                log.warning("copilot %s: %s callback failed (%s), retrying", job.id, kind, problem)
                await asyncio.sleep(self._callback_backoff_s * 2 ** (attempt - 1))
        self.stats.undelivered += 1
        log.error("copilot %s: %s callback could not be delivered (%s)", job.id, kind, problem)

    async def _post(self, url: str, payload: dict[str, Any]) -> int:
        async with self._session.post(
            url, json=payload, timeout=aiohttp.ClientTimeout(total=self._callback_timeout_s)
        ) as response:
            await response.read()
            return response.status

    # --- shutdown ---

    async def drain(self, grace_s: float | None = None) -> None:
        """Stop accepting and wait for running requests; those still running after ``grace_s``
        seconds (None = wait for all) are cancelled and get a best-effort 503 error callback."""
        self._closing = True
        tasks = set(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def close(self) -> None:
        """Stop accepting and cancel whatever is still running. Does not close the LLM or the
        session: whoever built them closes them."""
        await self.drain(grace_s=0)


def _deadline(ttl: float | None, loop: asyncio.AbstractEventLoop) -> float | None:
    """Loop time by which the portal wants the callback. ``ttl`` is documented as seconds from
    now; a value that can only be a Unix time (after 2001) is read as one, to be safe."""
    if not ttl:
        return None
    if ttl > 1_000_000_000:
        return loop.time() + (ttl - time.time())
    return loop.time() + ttl


def _error_body(code: int, message: str) -> dict[str, Any]:
    return {"message": message, "code": code, "api_request_completed": False}


def url_on_portal(url: str, domain: str) -> bool:
    """True when ``url`` is an http(s) URL on the portal's host (and port, when the domain has one)."""
    try:
        target = urlsplit(url)
        home = urlsplit(domain if "//" in domain else "//" + domain.strip())
        if target.scheme not in ("http", "https") or not target.hostname or not home.hostname:
            return False
        if target.hostname.lower() != home.hostname.lower():
            return False
        if home.port is not None:
            default = 443 if target.scheme == "https" else 80
            return (target.port or default) == home.port
        return True
    except ValueError:  # a malformed port
        return False
