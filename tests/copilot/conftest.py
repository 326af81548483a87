"""Fixtures for the CoPilot tests: a portal that receives callbacks, and the real completions
endpoint served on a real port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcoach.copilot.service import CopilotPortal, CopilotService
from callcoach.handlers.ai import RedactingAccessLogger, setup_ai_routes
from callcoach.llm.base import LLMBackend

SECRET = "portal-secret-0123456789"


@dataclass
class CallbackReceiver:
    """Stands in for the portal's callback URLs: records every POST, can fail the first N."""

    received: list[tuple[str, Any]] = field(default_factory=list)
    fail_times: int = 0
    fail_status: int = 503
    url: str = ""
    host: str = ""
    _runner: web.AppRunner | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.host = f"127.0.0.1:{self._runner.addresses[0][1]}"
        self.url = f"http://{self.host}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        if self.fail_times > 0:
            self.fail_times -= 1
            return web.json_response({"error": "busy"}, status=self.fail_status)
        body = await request.json()
        async with self._changed:
            self.received.append((request.path_qs, body))
            self._changed.notify_all()
        return web.json_response({"result": True})

    async def wait_for(self, count: int, within_s: float = 10.0) -> list[tuple[str, Any]]:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.received) >= count), within_s)
        return list(self.received)

    def on(self, path: str) -> list[Any]:
        return [body for path_qs, body in self.received if path_qs.split("?")[0] == path]

    def completion_body(self, request_id: str = "1", **overrides: Any) -> dict[str, Any]:
        """A completion request as Bitrix24 sends it, with callbacks pointing here."""
        body: dict[str, Any] = {
            "prompt": "Как ответить клиенту, что дорого?",
            "payload_role": "Ты помощник менеджера по продажам.",
            "context": [
                {"role": "user", "content": "Клиент говорит, что у конкурентов дешевле."},
                {"role": "assistant", "content": "Уточните, с чем он сравнивает."},
            ],
            "collect_context": True,
            "max_tokens": 500,
            "temperature": 0.3,
            "payload_markers": {"language": "ru"},
            "payload_raw": "copilot_prompt",
            "auth": {"access_token": "TOKEN-NEVER-LOGGED", "member_id": "m1"},
            "category": "text",
            "ttl": 60,
            "callbackUrl": f"{self.url}/callback?request={request_id}",
            "errorCallbackUrl": f"{self.url}/error?request={request_id}",
        }
        body.update(overrides)
        return body


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    portal = CallbackReceiver()
    await portal.start()
    yield portal
    await portal.close()


CopilotFactory = Callable[..., Awaitable[tuple[TestClient[web.Request, web.Application], CopilotService]]]


@pytest.fixture
async def copilot_app(
    receiver: CallbackReceiver, session: aiohttp.ClientSession
) -> AsyncIterator[CopilotFactory]:
    """Builds the real endpoint on a real port for a given backend; the portal behind SECRET is
    the callback receiver."""
    made: list[tuple[TestClient[web.Request, web.Application], CopilotService]] = []

    async def lookup(secret: str) -> CopilotPortal | None:
        return CopilotPortal(member_id="m1", domain=receiver.host) if secret == SECRET else None

    async def make(
        llm: LLMBackend | None, **service_options: Any
    ) -> tuple[TestClient[web.Request, web.Application], CopilotService]:
        service_options.setdefault("callback_backoff_s", 0.01)
        service = CopilotService(llm, session, lookup, **service_options)
        app = web.Application()
        setup_ai_routes(app, service)
        server = TestServer(app, host="127.0.0.1")
        # as production must run it: the access log masks the secret in the completions URL
        await server.start_server(access_log_class=RedactingAccessLogger)
        client = TestClient(server)
        await client.start_server()
        made.append((client, service))
        if llm is not None:
            backends.append(llm)
        return client, service

    backends: list[LLMBackend] = []
    yield make
    for client, service in made:
        await service.close()
        await client.close()
    for llm in backends:
        await llm.close()
