"""The install path, in both of its forms (``settings/app-installation/installation-finish.md``):

* an app with an interface (callcoach's kind: a handler path and a menu item): the portal opens
  the "initial installation path" in a frame with a POST like any app page
  (``settings/oauth/simple-way.md``: DOMAIN, PROTOCOL, LANG, APP_SID in the query; AUTH_ID,
  REFRESH_ID, SERVER_ENDPOINT, APPLICATION_TOKEN, member_id... in the body). The answer is an HTML
  page (Russian) that says what the server did and then calls ``BX24.installFinish()``: until
  then the portal sends no events;
* "API only": one ONAPPINSTALL POST (``api-reference/common/events/on-app-install.md``),
  answered with JSON.

Either is verified with the OAuth server before anything is stored (``b24.install_check``): a
forged install changes nothing and gets 401/403 with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from callcoach.context import SERVICES
from callcoach.handlers.verify import json_error, read_payload
from callcoach.installer import InstallError, InstallRefused, InstallResult
from callcoach.report.render import render_error_page, render_install_page

log = logging.getLogger(__name__)

# The page loads the BX24 library from api.bitrix24.com and runs one inline script.
_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' https://api.bitrix24.com; "
    "style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
)
STEP_TEXT = {
    "chat bot": "Чат-бот callcoach зарегистрирован (imbot.v2.Bot.register)",
    "CoPilot engine": "Движок CoPilot зарегистрирован (ai.engine.register)",
}


def _html(body: str, status: int = 200) -> web.Response:
    resp = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    resp.headers["Content-Security-Policy"] = _CSP
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def is_frame_install(query: Mapping[str, str], payload: Mapping[str, Any]) -> bool:
    """The frame form carries AUTH_ID/REFRESH_ID in the body and DOMAIN in the query; the API
    form is an ``event=ONAPPINSTALL`` with an ``auth`` block."""
    if str(payload.get("event") or "").upper() == "ONAPPINSTALL":
        return False
    return any(k in payload for k in ("AUTH_ID", "REFRESH_ID")) or "DOMAIN" in query


def _done_list(result: InstallResult, step_names: list[str], public_url: str) -> list[tuple[bool, str]]:
    done: list[tuple[bool, str]] = [(True, "Портал сохранён на сервере приложения, токены доступа проверены")]
    if not public_url:
        done.append((False, "Подписки на события не созданы: не задан CALLCOACH_PUBLIC_URL"))
    elif any(w.startswith("event.bind") for w in result.warnings):
        done.append((False, "Подписки на события не созданы (event.bind)"))
    else:
        new = ", ".join(result.bound) if result.bound else "все уже были"
        done.append((True, f"Подписки на события ONVOXIMPLANTCALLEND и ONAPPUNINSTALL (новые: {new})"))
    for name in step_names:
        text = STEP_TEXT.get(name, name)
        done.append((name in result.steps, text if name in result.steps else f"{text}: не удалось"))
    if "CoPilot engine" not in step_names:
        done.append((False, "Движок CoPilot не подключён: языковая модель не настроена (CALLCOACH_LLM)"))
    return done


async def handle_install(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    payload = await read_payload(request)
    if is_frame_install(request.query, payload):
        return await _frame_install(request, payload)
    event = str(payload.get("event") or "").upper()
    if event != "ONAPPINSTALL":
        raise json_error(400, "expected the ONAPPINSTALL event or the install page's POST")
    auth = payload.get("auth")
    if not isinstance(auth, dict):
        raise json_error(400, "no auth block")
    if any(isinstance(value, (dict, list)) for value in auth.values()):
        raise json_error(400, "auth fields must be text")  # PHP sends them as strings
    try:
        result = await services.installer.install(auth)
    except InstallError as exc:
        raise json_error(400, str(exc)) from None
    except InstallRefused as exc:
        services.metrics.events.labels("ONAPPINSTALL", "refused").inc()
        log.warning("refused an ONAPPINSTALL from %s: %s", request.remote, exc.reason)
        raise json_error(exc.status, exc.reason) from None
    services.metrics.events.labels("ONAPPINSTALL", "installed").inc()
    return web.json_response({"result": "installed", "bound": result.bound, "warnings": result.warnings})


async def _frame_install(request: web.Request, payload: Mapping[str, Any]) -> web.Response:
    services = request.app[SERVICES]
    form = {k: v for k, v in payload.items() if isinstance(v, str)}
    try:
        result = await services.installer.install_frame(request.query, form)
    except InstallError as exc:
        return _html(render_error_page(400, "Установка не выполнена", str(exc)), 400)
    except InstallRefused as exc:
        services.metrics.events.labels("INSTALL_PAGE", "refused").inc()
        log.warning("refused an install page request from %s: %s", request.remote, exc.reason)
        message = (
            "Сервер авторизации Bitrix24 не подтвердил установку, ничего не сохранено. "
            f"Причина: {exc.reason}."
        )
        return _html(render_error_page(exc.status, "Установка не подтверждена", message), exc.status)
    services.metrics.events.labels("INSTALL_PAGE", "installed").inc()
    names = [name for name, _ in services.installer.steps]
    done = _done_list(result, names, services.settings.public_base())
    return _html(render_install_page(result.portal.domain, done, result.warnings))


async def install_info(request: web.Request) -> web.Response:
    """A GET of the install path (someone opened it by hand): say what it is for."""
    message = (
        "Это путь первоначальной установки приложения callcoach. Bitrix24 открывает его сам при "
        "установке локального приложения; вручную открывать его не нужно."
    )
    return _html(render_error_page(405, "Путь установки", message), 405)


__all__ = ["handle_install", "install_info", "is_frame_install"]
