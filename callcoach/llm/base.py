"""What every LLM backend speaks: a chat request in, plain text out, and one error type.

The CoPilot provider, the bot and call summaries all talk to an ``LLMBackend``; which model sits
behind it (Gemini, an OpenAI-compatible server) is decided once, in ``callcoach.llm.factory``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]

# Called once per ``complete()`` with (backend name, seconds spent, whether it succeeded);
# a Prometheus histogram or a test list plugs in here.
LatencyHook = Callable[[str, float, bool], None]

# HTTP statuses worth trying again: rate limits, timeouts and server-side failures.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(slots=True)
class LLMRequest:
    """One completion: an optional system instruction, the turns in chronological order (the last
    one is the question being asked), and generation limits (None = the backend's default)."""

    system: str | None = None
    messages: list[ChatMessage] = field(default_factory=list)
    max_tokens: int | None = None
    temperature: float | None = None
    # a JSON Schema the answer must follow (the answer is then that JSON as text): Gemini gets it
    # as ``response_schema``, an OpenAI-compatible server as ``response_format`` json_schema
    response_schema: dict[str, Any] | None = None

    @classmethod
    def ask(
        cls,
        prompt: str,
        *,
        system: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        response_schema: dict[str, Any] | None = None,
    ) -> LLMRequest:
        """A single-question request."""
        return cls(system, [ChatMessage("user", prompt)], max_tokens, temperature, response_schema)


class LLMError(Exception):
    """A completion failed. ``code`` is HTTP-like (429 rate limit, 5xx server, 504 our timeout,
    503 no backend); ``retryable`` says whether the same request may succeed later;
    ``retry_after`` is the server's hint in seconds, when it gave one."""

    def __init__(
        self, message: str, *, code: int = 500, retryable: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.message} (code {self.code})"


class LLMUnavailable(LLMError):
    """No LLM is configured (``CALLCOACH_LLM=none``) or the configured one cannot be used."""

    def __init__(self, message: str = "no LLM is configured (CALLCOACH_LLM=none)") -> None:
        super().__init__(message, code=503, retryable=False)


def cut_off(max_tokens: int | None) -> LLMError:
    """A structured answer that stopped at the token limit: half a JSON document is no answer, and
    the same request stops at the same place again, so it is not retried. A small model seen on a
    real llama.cpp server looped inside one quote until the limit; saying so beats "not JSON"."""
    limit = f"{max_tokens} tokens" if max_tokens else "the server's default"
    return LLMError(f"the answer was cut off at the token limit ({limit}) before its JSON ended", code=502)


def status_is_retryable(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


@runtime_checkable
class LLMBackend(Protocol):
    """A chat model. ``context_limit`` is the model's window in tokens (input and output together);
    ``complete`` returns the answer text or raises ``LLMError``."""

    name: str
    context_limit: int

    async def complete(self, request: LLMRequest) -> str: ...

    async def close(self) -> None: ...
