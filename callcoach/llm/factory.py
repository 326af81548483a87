"""Building the configured backend from ``Settings`` (``CALLCOACH_LLM`` = gemini | openai | none)."""

from __future__ import annotations

import aiohttp

from callcoach.config import ConfigError, Settings
from callcoach.llm.base import LatencyHook, LLMBackend
from callcoach.llm.resilient import ResilientLLM


def build_llm(
    settings: Settings,
    *,
    session: aiohttp.ClientSession | None = None,
    on_latency: LatencyHook | None = None,
    max_attempts: int = 3,
    backoff_s: float = 1.0,
) -> LLMBackend | None:
    """The configured backend wrapped in ``ResilientLLM``, or None for ``none``.

    ``session`` is shared by the OpenAI-compatible backend (the caller closes it); the Gemini SDK
    keeps its own. A missing or wrong setting raises ``ConfigError`` naming the variable.
    """
    inner: LLMBackend
    if settings.llm == "none":
        return None
    if settings.llm == "gemini":
        from callcoach.llm.gemini import GeminiBackend  # the SDK is heavy; import only when used

        api_key = settings.gemini_api_key.get_secret_value().strip()
        if not api_key:
            raise ConfigError("CALLCOACH_GEMINI_API_KEY: required when CALLCOACH_LLM=gemini")
        if not settings.gemini_model:
            raise ConfigError("CALLCOACH_GEMINI_MODEL: must not be empty")
        inner = GeminiBackend(
            api_key=api_key,
            model=settings.gemini_model,
            base_url=str(settings.gemini_base_url) if settings.gemini_base_url else None,
            timeout_s=settings.llm_timeout_s,
            context_limit=settings.llm_context_limit,
        )
    else:
        from callcoach.llm.openai_compat import OpenAICompatBackend

        if settings.openai_base_url is None:
            raise ConfigError(
                "CALLCOACH_OPENAI_BASE_URL: required when CALLCOACH_LLM=openai "
                "(e.g. http://localhost:11434/v1 for Ollama, http://localhost:8000/v1 for vLLM)"
            )
        inner = OpenAICompatBackend(
            base_url=str(settings.openai_base_url),
            model=settings.openai_model,
            api_key=settings.openai_api_key.get_secret_value(),
            timeout_s=settings.llm_timeout_s,
            context_limit=settings.llm_context_limit,
            session=session,
        )
    return ResilientLLM(
        inner,
        timeout_s=settings.llm_timeout_s,
        max_attempts=max_attempts,
        backoff_s=backoff_s,
        on_latency=on_latency,
    )
