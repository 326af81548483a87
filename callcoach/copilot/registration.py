"""Registering callcoach as a Bitrix24 CoPilot engine (``ai.engine.register``), so that the
portal's CoPilot asks our LLM (see ``callcoach.copilot.service`` for the requests)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote

from callcoach.b24.errors import B24Error

ENGINE_CODE = "callcoach_llm"
ENGINE_NAME = "callcoach"
COMPLETIONS_PATH = "/ai/completions"


class RestCaller(Protocol):
    """What registration needs from the REST client (``callcoach.b24.client.B24Client.call``)."""

    async def call(self, method: str, params: dict[str, Any], /) -> Any: ...


def new_copilot_secret() -> str:
    """A fresh per-portal secret for the completions URL."""
    return secrets.token_urlsafe(32)


def completions_url(public_url: str, secret: str) -> str:
    return f"{public_url.rstrip('/')}{COMPLETIONS_PATH}?secret={quote(secret, safe='')}"


async def register_ai_engine(
    client: RestCaller,
    *,
    public_url: str,
    secret: str,
    context_limit: int,
    code: str = ENGINE_CODE,
    name: str = ENGINE_NAME,
) -> None:
    """Register our CoPilot engine, replacing an earlier registration with the same code.

    Bitrix24 refuses to register an existing code again, so: ``ai.engine.list`` -> our code there?
    ``ai.engine.unregister`` -> ``ai.engine.register``. During register the portal GETs the
    completions URL and needs 200, so the app must already be serving ``COMPLETIONS_PATH``.
    REST errors propagate from ``client.call``.
    """
    if code in _engine_codes(await client.call("ai.engine.list", {})):
        await client.call("ai.engine.unregister", {"code": code})
    params = {
        "name": name,
        "code": code,
        "category": "text",
        "completions_url": completions_url(public_url, secret),
        "settings": {
            "code_alias": "ChatGPT",
            "model_context_type": "token",
            "model_context_limit": context_limit,
        },
    }
    try:
        await client.call("ai.engine.register", params)
    except B24Error as exc:
        # ai-engine-register.md: ENGINE_REGISTER_ERROR_CODE_UNIQUE when the code exists (an engine
        # the listing did not show, or one registered meanwhile): replace it once
        if exc.code != "ENGINE_REGISTER_ERROR_CODE_UNIQUE":
            raise
        await client.call("ai.engine.unregister", {"code": code})
        await client.call("ai.engine.register", params)


async def unregister_ai_engine(client: RestCaller, *, code: str = ENGINE_CODE) -> bool:
    """Remove our engine if registered; True when there was one."""
    if code not in _engine_codes(await client.call("ai.engine.list", {})):
        return False
    await client.call("ai.engine.unregister", {"code": code})
    return True


def _engine_codes(listing: Any) -> set[str]:
    """Engine codes in an ``ai.engine.list`` answer, whatever its shape (the docs do not show one):
    a list or an id-keyed dict of engines, with ``code`` or ``CODE``, possibly still wrapped in
    ``{"result": ...}``."""
    if isinstance(listing, Mapping):
        if "result" in listing:
            return _engine_codes(listing["result"])
        own = listing.get("code", listing.get("CODE"))
        if isinstance(own, str):
            return {own}
        items: Any = listing.values()
    elif isinstance(listing, list | tuple):
        items = listing
    else:
        return set()
    codes: set[str] = set()
    for item in items:
        if isinstance(item, Mapping):
            value = item.get("code", item.get("CODE"))
            if isinstance(value, str):
                codes.add(value)
    return codes
