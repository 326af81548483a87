"""Any OpenAI-compatible chat server (vLLM, llama.cpp server, Ollama, LM Studio) over plain aiohttp.

``base_url`` is what those servers document as the API base, ending in ``/v1``
(e.g. ``http://localhost:11434/v1`` for Ollama); requests go to ``{base_url}/chat/completions``.
With no model configured, the first model listed by ``GET {base_url}/models`` is used, which is
what a single-model llama.cpp or vLLM server expects.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from callcoach.llm.base import LLMError, LLMRequest, cut_off, status_is_retryable


class OpenAICompatBackend:
    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str = "",
        api_key: str = "",
        timeout_s: float = 60.0,
        context_limit: int = 32000,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.context_limit = context_limit
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session = session
        self._own_session = session is None
        self._model_lock = asyncio.Lock()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _model_name(self) -> str:
        async with self._model_lock:
            if not self.model:
                body = await self._request("GET", "/models", None)
                models = body.get("data") if isinstance(body, dict) else None
                if not models or not isinstance(models[0], dict) or not models[0].get("id"):
                    raise LLMError(
                        "CALLCOACH_OPENAI_MODEL is not set and the server lists no models", code=400
                    )
                self.model = str(models[0]["id"])
            return self.model

    async def _request(self, method: str, path: str, payload: dict[str, Any] | None) -> Any:
        url = self.base_url + path
        try:
            async with self._http().request(
                method, url, json=payload, headers=self._headers(), timeout=self._timeout
            ) as response:
                raw = await response.text()
                if response.status >= 400:
                    raise LLMError(
                        f"{url} answered {response.status}: {_error_message(raw)}",
                        code=response.status,
                        retryable=status_is_retryable(response.status),
                        retry_after=_retry_after(response.headers.get("Retry-After")),
                    )
        except aiohttp.ClientError as exc:
            raise LLMError(f"{url} is unreachable: {exc!r}", code=503, retryable=True) from None
        try:
            return json.loads(raw)
        except ValueError:
            raise LLMError(f"{url} answered with something that is not JSON", code=502) from None

    async def complete(self, request: LLMRequest) -> str:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        payload: dict[str, Any] = {"model": await self._model_name(), "messages": messages}
        if request.max_tokens:
            payload["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        if request.response_schema is not None:
            # structured outputs (OpenAI, vLLM, llama.cpp server and Ollama all accept this form)
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.response_schema, "strict": True},
            }
        body = await self._request("POST", "/chat/completions", payload)
        try:
            text = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise LLMError("the server's answer has no choices[0].message.content", code=502) from None
        reason = body["choices"][0].get("finish_reason")
        if request.response_schema is not None and reason == "length":  # hit max_tokens
            raise cut_off(request.max_tokens)
        if not isinstance(text, str) or not text.strip():
            raise LLMError(f"the server returned no text (finish reason {reason})", code=502)
        return text.strip()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None


def _error_message(raw: str) -> str:
    try:
        body = json.loads(raw)
    except ValueError:
        return raw[:300]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)[:300]
    return str(error or body)[:300]


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:  # an HTTP date; not worth parsing
        return None
