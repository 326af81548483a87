"""Gemini through the official google-genai SDK, async client (``client.aio``).

The SDK calls ``POST {base}/{api_version}/models/{model}:generateContent`` with the key in the
``x-goog-api-key`` header; ``base_url`` points it at a proxy or at the test fake. The SDK's own
retries are switched off: ``ResilientLLM`` owns retries and timeouts for every backend alike.
"""

from __future__ import annotations

import logging

import aiohttp
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from callcoach.llm.base import LLMError, LLMRequest, cut_off, status_is_retryable

log = logging.getLogger(__name__)

API_VERSION = "v1beta"


class GeminiBackend:
    name = "gemini"

    def __init__(
        self,
        *,
        api_key: str,
        model: str = "gemini-2.5-flash",
        base_url: str | None = None,
        timeout_s: float = 60.0,
        context_limit: int = 32000,
    ) -> None:
        if not api_key:
            raise ValueError("a Gemini API key is required")
        self.model = model
        self.context_limit = context_limit
        options = types.HttpOptions(
            base_url=base_url.rstrip("/") + "/" if base_url else None,
            api_version=API_VERSION,
            timeout=int(timeout_s * 1000),  # milliseconds in the SDK
            retry_options=types.HttpRetryOptions(attempts=1),
        )
        self._client = genai.Client(api_key=api_key, http_options=options)

    def _config(self, request: LLMRequest) -> types.GenerateContentConfig:
        system_parts = [request.system] if request.system else []
        # Gemini has no "system" turn: system messages inside the conversation join the instruction.
        system_parts += [m.content for m in request.messages if m.role == "system"]
        config = types.GenerateContentConfig(
            system_instruction="\n\n".join(system_parts) if system_parts else None,
            max_output_tokens=request.max_tokens or None,
            temperature=request.temperature,
            # we pass no tools; switching automatic function calling off also spares a log line a call
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        if request.response_schema is not None:
            config.response_mime_type = "application/json"
            config.response_schema = request.response_schema
        if self.model.startswith("gemini-2.5-flash"):
            # 2.5 Flash thinks by default and its thoughts count against max_output_tokens, so a
            # short CoPilot limit can leave no room for the answer; quick answers are what we need.
            config.thinking_config = types.ThinkingConfig(thinking_budget=0)
        return config

    async def complete(self, request: LLMRequest) -> str:
        contents = [
            types.Content(
                role="model" if m.role == "assistant" else "user", parts=[types.Part(text=m.content)]
            )
            for m in request.messages
            if m.role != "system"
        ]
        if not contents:
            raise LLMError("the request has no user message", code=400)
        try:
            response = await self._client.aio.models.generate_content(
                model=self.model, contents=contents, config=self._config(request)
            )
        except genai_errors.APIError as exc:
            code = int(exc.code or 500)
            raise LLMError(
                f"Gemini answered {code} {exc.status or ''}: {exc.message or ''}".strip(),
                code=code,
                retryable=status_is_retryable(code),
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise LLMError(f"Gemini is unreachable: {exc!r}", code=503, retryable=True) from None
        text = _text_of(response)
        stopped = response.candidates[0].finish_reason if response.candidates else None
        if request.response_schema is not None and stopped == types.FinishReason.MAX_TOKENS:
            raise cut_off(request.max_tokens)
        if not text:
            block = response.prompt_feedback.block_reason if response.prompt_feedback else None
            raise LLMError(
                f"Gemini returned no text (finish reason {stopped}, block reason {block})", code=502
            )
        usage = response.usage_metadata
        if usage is not None:
            log.debug(
                "gemini tokens: prompt=%s answer=%s", usage.prompt_token_count, usage.candidates_token_count
            )
        return text

    async def close(self) -> None:
        await self._client.aio.aclose()


def _text_of(response: types.GenerateContentResponse) -> str:
    """Concatenated text parts of the first candidate, skipping thoughts."""
    if not response.candidates:
        return ""
    content = response.candidates[0].content
    if content is None or not content.parts:
        return ""
    return "".join(part.text for part in content.parts if part.text and not part.thought).strip()
