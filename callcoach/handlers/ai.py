"""``/ai/completions``: the CoPilot provider endpoint (work happens in ``callcoach.copilot``), and
the CoPilot feature's ``setup``: the service on the app's LLM, its install step, its shutdown.

GET answers 200 - Bitrix24 probes the URL while registering the engine. POST reads the body (JSON
as Bitrix24 sends it, or a form with PHP-style ``a[b][0]`` keys, to be lenient) and hands it to
``CopilotService.accept``, whose status and JSON go back as they are.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, MutableMapping
from typing import Any, cast

from aiohttp import web
from aiohttp.web_log import AccessLogger

from callcoach.b24.client import B24Client
from callcoach.b24.events import EventParseError, parse_event_body
from callcoach.context import SERVICES
from callcoach.copilot.registration import COMPLETIONS_PATH, register_ai_engine
from callcoach.copilot.service import CopilotPortal, CopilotService
from callcoach.storage.portals import Portal

copilot_key = web.AppKey("copilot", CopilotService)


def ai_routes(service_key: web.AppKey[CopilotService] = copilot_key) -> list[web.RouteDef]:
    """Routes for ``app.add_routes``; the service is read from ``app[service_key]``."""

    async def probe(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def complete(request: web.Request) -> web.Response:
        body = await read_body(request)
        status, payload = await request.app[service_key].accept(request.query.get("secret"), body)
        return web.json_response(payload, status=status)

    return [web.get(COMPLETIONS_PATH, probe), web.post(COMPLETIONS_PATH, complete)]


def setup_ai_routes(app: web.Application, service: CopilotService) -> None:
    """Put ``service`` in the app under ``copilot_key`` and add the routes."""
    app[copilot_key] = service
    app.add_routes(ai_routes(copilot_key))


def setup(app: web.Application) -> None:
    """CoPilot in the app: the routes, and the service started with the app's services."""
    app.add_routes(ai_routes(copilot_key))
    app.cleanup_ctx.append(_copilot)


async def _copilot(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    settings, llm = services.settings, services.llm

    async def lookup(secret: str) -> CopilotPortal | None:
        portal = await services.store.portals.by_ai_secret(secret)
        if portal is None or not portal.installed:
            return None
        return CopilotPortal(member_id=portal.member_id, domain=portal.domain)

    copilot = CopilotService(llm, services.session, lookup)
    services.copilot = app[copilot_key] = copilot
    if llm is not None:  # else nothing to offer CoPilot; the endpoint answers with an error callback

        async def register_engine(portal: Portal, client: B24Client) -> None:
            base = settings.public_base()
            if base and portal.mode == "app" and portal.ai_secret:
                await register_ai_engine(
                    client, public_url=base, secret=portal.ai_secret, context_limit=llm.context_limit
                )

        services.installer.add_step("CoPilot engine", register_engine)
    try:
        yield
    finally:
        await copilot.close()


async def read_body(request: web.Request) -> dict[str, Any] | None:
    """The body as a dict (JSON, or a form with PHP-style keys), or None when it is neither."""
    try:
        parsed = parse_event_body(request.content_type, await request.read())
    except EventParseError:
        return None
    return parsed or None


# --- keeping the per-portal secret out of the access log ---------------------------------------

_SECRET_IN_QUERY = re.compile(r"([?&]secret=)[^&\s\"]*")


def redact_secrets(text: str) -> str:
    """``/ai/completions?secret=abc`` -> ``/ai/completions?secret=***``."""
    return _SECRET_IN_QUERY.sub(r"\1***", text)


class _RedactingAdapter(logging.LoggerAdapter[logging.Logger]):
    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = kwargs.get("extra")
        if isinstance(extra, dict):
            kwargs["extra"] = {k: redact_secrets(v) if isinstance(v, str) else v for k, v in extra.items()}
        return (redact_secrets(msg) if isinstance(msg, str) else msg), kwargs


class RedactingAccessLogger(AccessLogger):
    """aiohttp's access logger with ``secret=`` values masked: the completions URL carries the
    portal's secret in its query string and aiohttp logs the request line as it came.
    Use ``web.AppRunner(app, access_log_class=RedactingAccessLogger)``."""

    def __init__(self, logger: logging.Logger, log_format: str = AccessLogger.LOG_FORMAT) -> None:
        super().__init__(cast(logging.Logger, _RedactingAdapter(logger, {})), log_format)
