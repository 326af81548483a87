"""A fake OpenAI-compatible chat server (the shape vLLM, llama.cpp server and Ollama speak).

Serves ``POST /v1/chat/completions`` and ``GET /v1/models``; checks ``Authorization: Bearer`` when
``api_key`` is set. Controls as in ``tests.fakes.gemini``: ``answer`` (text or a function of the
body), ``delay_s``, ``gate``, ``fail_status``/``fail_times``, ``retry_after`` (sent with failures);
``requests`` keeps the JSON bodies. An answer longer than the request's ``max_tokens`` (three
characters a token) is cut there with ``finish_reason`` "length", as real servers do.
``base_url`` (ending in ``/v1``) is what the app is given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.local_http import serve_locally


@dataclass
class FakeOpenAI:
    api_key: str = ""
    model: str = "local-model"
    answer: str | Callable[[dict[str, Any]], str] = "Ответ локальной модели"
    delay_s: float = 0.0
    gate: asyncio.Event | None = None
    fail_status: int = 500
    fail_times: int = 0
    retry_after: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    received: asyncio.Event = field(default_factory=asyncio.Event)  # set once a chat request arrived
    answered: int = 0
    url: str = ""
    _runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner, port = await serve_locally(app)
        self.url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _authorized(self, request: web.Request) -> bool:
        return not self.api_key or request.headers.get("Authorization") == f"Bearer {self.api_key}"

    @staticmethod
    def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response(
            {"error": {"message": message, "type": "fake_error", "code": status}},
            status=status,
            headers=headers,
        )

    async def _models(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, "invalid api key")
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, "invalid api key")
        try:
            body = await request.json()
        except ValueError:
            return self._error(400, "invalid JSON")
        self.requests.append(body)
        self.received.set()
        if body.get("model") != self.model:
            return self._error(404, f"model {body.get('model')!r} not found")
        if not body.get("messages"):
            return self._error(400, "messages is required")
        if self.fail_times > 0:
            self.fail_times -= 1
            headers = {"Retry-After": self.retry_after} if self.retry_after else None
            return self._error(self.fail_status, "injected failure", headers)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.gate is not None:
            await self.gate.wait()
        text = self.answer(body) if callable(self.answer) else self.answer
        self.answered += 1
        # as the API does: an answer longer than max_tokens stops there, finish_reason "length"
        # (the fake counts three characters a token, as its usage figures do)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        finish = "stop"
        if isinstance(limit, int) and len(text) // 3 + 1 > limit:
            text, finish = text[: limit * 3], "length"
        return web.json_response(
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "model": self.model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": len(text) // 3 + 1},
            }
        )
