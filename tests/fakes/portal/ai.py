"""CoPilot engines (api-reference/ai): ai.engine.register checks the completions URL.

A part of ``FakePortal`` (tests/fakes/portal/server.py)."""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from tests.fakes.portal.models import FakeError


class AiArea:
    # --- ai ----------------------------------------------------------------------------------------
    async def m_ai_engine_register(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        """api-reference/ai/ai-engine-register.md, with its ENGINE_REGISTER_ERROR_* codes (400)."""
        self._require_admin(ctx)
        code, url, name = p.get("code"), p.get("completions_url"), p.get("name")
        category = p.get("category")
        if not isinstance(name, str) or not name:
            raise FakeError("ENGINE_REGISTER_ERROR_NAME", "The `name` key with a string value is required")
        if not isinstance(code, str) or not code:
            raise FakeError("ENGINE_REGISTER_ERROR_CODE", "The `code` key with a string value is required")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", code):
            raise FakeError(
                "ENGINE_REGISTER_ERROR_CODE_FORMAT", "The `code` key must contain only characters A-Za-z0-9-_"
            )
        if not category:
            raise FakeError("ENGINE_REGISTER_ERROR_CATEGORY", "The `category` key is required")
        if category not in ("text", "image", "audio", "call"):
            raise FakeError(
                "ENGINE_REGISTER_ERROR_CATEGORY_FORMAT",
                "The `category` key can contain one of the values: text, image, audio, call",
            )
        if not isinstance(url, str) or not url:
            raise FakeError(
                "ENGINE_REGISTER_ERROR_COMPLETIONS_URL",
                "The `completions_url` key with a string value is required",
            )
        if "settings" in p and not isinstance(p["settings"], dict):
            raise FakeError(
                "ENGINE_REGISTER_ERROR_SETTINGS_FORMAT", "The value of the `settings` key must be valid JSON"
            )
        if code in self.ai_engines:
            raise FakeError("ENGINE_REGISTER_ERROR_CODE_UNIQUE", "A record with this `code` already exists.")
        assert self._session is not None
        try:  # the portal checks the endpoint: exactly 200
            async with self._session.get(
                url, timeout=aiohttp.ClientTimeout(total=self.ai_check_timeout_s)
            ) as r:
                status = r.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        if status != 200:
            raise FakeError(
                "ENGINE_REGISTER_ERROR_COMPLETIONS_URL_FAIL",
                "The value of the `completions_url` key must be a valid URL that returns status 200 "
                f"upon verification (answered {status or 'nothing'})",
            )
        engine_id = next(self._ids)
        self.ai_engines[code] = {
            "id": engine_id,
            "name": name,
            "code": code,
            "category": category,
            "completions_url": url,
            "settings": p.get("settings") or {},
            "app_code": self.client_id,
        }
        return engine_id

    def m_ai_engine_list(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/ai/ai-engine-list.md
        return list(self.ai_engines.values())

    def m_ai_engine_unregister(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/ai/ai-engine-unregister.md
        self._require_admin(ctx)
        if p.get("code") not in self.ai_engines:
            raise FakeError("ERROR_ENGINE_NOT_FOUND", "Engine not found", 400)
        del self.ai_engines[p["code"]]
        return True
