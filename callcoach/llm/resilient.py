"""Retries, timeouts, context fitting and a latency hook around any backend.

Every caller gets the same behaviour whichever model is configured: the request is fitted to the
context window, each attempt is bounded by ``timeout_s``, retryable failures (429, 5xx, network)
are tried again with exponential backoff and jitter (the server's ``Retry-After`` wins when it gives
one), and a timeout is not retried - an attempt that used the whole timeout would likely do so again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

from callcoach.llm.base import LatencyHook, LLMBackend, LLMError, LLMRequest
from callcoach.llm.budget import estimate_request_tokens, fit_to_context

log = logging.getLogger(__name__)


class ResilientLLM:
    def __init__(
        self,
        inner: LLMBackend,
        *,
        timeout_s: float = 60.0,
        max_attempts: int = 3,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        on_latency: LatencyHook | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.context_limit = inner.context_limit
        self.timeout_s = timeout_s
        self.max_attempts = max(1, max_attempts)
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._on_latency = on_latency
        self._sleep = sleep

    async def complete(self, request: LLMRequest) -> str:
        fitted = fit_to_context(request, self.context_limit)
        if fitted is not request:
            log.info(
                "%s: prompt cut to the context limit (%d -> %d estimated tokens, limit %d)",
                self.name,
                estimate_request_tokens(request),
                estimate_request_tokens(fitted),
                self.context_limit,
            )
        started = time.monotonic()
        ok = False
        try:
            text = await self._attempts(fitted)
            ok = True
            return text
        finally:
            self._report(time.monotonic() - started, ok)

    async def _attempts(self, request: LLMRequest) -> str:
        attempt = 1
        while True:
            try:
                async with asyncio.timeout(self.timeout_s):
                    return await self.inner.complete(request)
            except TimeoutError:
                raise LLMError(f"{self.name} did not answer within {self.timeout_s:g} s", code=504) from None
            except LLMError as exc:
                if not exc.retryable or attempt >= self.max_attempts:
                    raise
                delay = self._delay(attempt, exc.retry_after)
                log.warning(
                    "%s failed (%s), attempt %d of %d, retrying in %.1f s",
                    self.name,
                    exc,
                    attempt,
                    self.max_attempts,
                    delay,
                )
                await self._sleep(delay)
                attempt += 1

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff_s)
        base = min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
        return base / 2 + random.uniform(0, base / 2)  # jitter spreads out clients retrying together

    def _report(self, seconds: float, ok: bool) -> None:
        if self._on_latency is None:
            return
        try:
            self._on_latency(self.name, seconds, ok)
        except Exception:  # a broken metrics hook must not fail the completion
            log.exception("latency hook failed")

    async def close(self) -> None:
        await self.inner.close()
