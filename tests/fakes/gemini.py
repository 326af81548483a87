"""A fake Gemini API over real HTTP, for driving the real google-genai client in tests.

Serves ``POST /{v1beta|v1}/models/{model}:generateContent``; checks ``x-goog-api-key``; answers
``candidates[0].content.parts[].text`` with ``usageMetadata``. Controls: ``answer`` (text or a
function of the request body), ``delay_s``, ``gate`` (an ``asyncio.Event`` the answer waits for),
``fail_status``/``fail_times`` (the next N requests fail with that status). An answer longer than
``maxOutputTokens`` (three characters a token) is cut there with ``finishReason`` MAX_TOKENS.
Every request is kept in ``requests`` (JSON bodies) so tests can check what arrived.

    async with FakeGemini(answer="Привет") as fake:
        GeminiBackend(api_key=fake.api_key, base_url=fake.url, ...)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.local_http import serve_locally

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@dataclass
class RecordedRequest:
    path: str
    model: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeGemini:
    api_key: str = "test-gemini-key"
    answer: str | Callable[[dict[str, Any]], str] = "Ответ модели"
    delay_s: float = 0.0
    gate: asyncio.Event | None = None
    fail_status: int = 500
    fail_times: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    received: asyncio.Event = field(default_factory=asyncio.Event)  # set once a request was recorded
    answered: int = 0
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/{version}/models/{target}", self._generate)
        self._runner, port = await serve_locally(app)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeGemini:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        return web.json_response(
            {"error": {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN")}},
            status=status,
        )

    async def _generate(self, request: web.Request) -> web.Response:
        model, _, action = request.match_info["target"].partition(":")
        if request.match_info["version"] not in ("v1", "v1beta") or action != "generateContent":
            return self._error(404, "no such method")
        if request.headers.get("x-goog-api-key") != self.api_key:
            return self._error(403, "API key not valid. Please pass a valid API key.")
        try:
            body = await request.json()
        except ValueError:
            return self._error(400, "invalid JSON payload")
        self.requests.append(RecordedRequest(request.path, model, dict(request.headers), body))
        self.received.set()
        if not body.get("contents"):
            return self._error(400, "contents is not specified")
        if self.fail_times > 0:
            self.fail_times -= 1
            return self._error(self.fail_status, "injected failure")
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.gate is not None:
            await self.gate.wait()
        text = self.answer(body) if callable(self.answer) else self.answer
        self.answered += 1
        # as the API does: an answer longer than generationConfig.maxOutputTokens stops there with
        # finishReason MAX_TOKENS (the fake counts three characters a token, as in usageMetadata)
        limit = body.get("generationConfig", {}).get("maxOutputTokens")
        finish = "STOP"
        if isinstance(limit, int) and len(text) // 3 + 1 > limit:
            text, finish = text[: limit * 3], "MAX_TOKENS"
        half = len(text) // 2  # two parts, as real answers often come
        return web.json_response(
            {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": [{"text": text[:half]}, {"text": text[half:]}]},
                        "finishReason": finish,
                        "index": 0,
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": sum(len(str(c)) for c in body["contents"]) // 3,
                    "candidatesTokenCount": len(text) // 3 + 1,
                    "totalTokenCount": 0,
                },
                "modelVersion": model,
            }
        )

    # --- helpers for assertions ---

    @staticmethod
    def system_text(body: dict[str, Any]) -> str | None:
        system = body.get("systemInstruction")
        return "".join(p.get("text", "") for p in system["parts"]) if system else None

    @staticmethod
    def turns(body: dict[str, Any]) -> list[tuple[str, str]]:
        return [(c.get("role", ""), "".join(p.get("text", "") for p in c["parts"])) for c in body["contents"]]
