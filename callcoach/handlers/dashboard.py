"""The dashboard: the local app's page that Bitrix24 opens in an iframe, and the call pages.

Bitrix24 opens the page with a POST (or a GET) carrying AUTH_ID, member_id, DOMAIN, ... . We
trust none of it until the portal itself accepts that AUTH_ID (``user.current`` with the user's
own token); then a signed session cookie lets the iframe's later GETs (filters, call pages, the
JSON export) through without asking the portal again. Call pages are also reachable through a
signed expiring link (the timeline comment carries one): the link itself is the permission.

Everyone sees only the calls the rights rule lets him see (``callcoach.rights``: his own, his
departments' as their head, all as a portal admin). Data and that decision come from an injected
``DashboardSource``: this module imports no storage and decides nothing about calls.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from callcoach.b24.client import B24Client
from callcoach.b24.errors import (
    B24Error,
    B24TransportError,
    InternalServerError,
    OperationTimeLimit,
    QueryLimitExceeded,
)
from callcoach.pipeline.models import Category
from callcoach.report.analyze_output import standard_categories_or_none
from callcoach.report.data import CallRecord, ReportInput, build_report
from callcoach.report.links import Session, sign_session, verify_call_link, verify_session
from callcoach.report.render import render_call_page, render_error_page, render_report_html

log = logging.getLogger(__name__)

SESSION_COOKIE = "callcoach_session"
# Inside the portal's iframe the cookie is a third-party cookie that browsers may drop, so the
# session also travels in the page's own links (``?s=``) and may come in this header.
SESSION_PARAM = "s"
SESSION_HEADER = "X-Callcoach-Session"
SESSION_TTL_S = 3600  # the portal's AUTH_ID lives an hour too; the iframe is reopened often
# inline styles and scripts only: the page loads nothing from anywhere
_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; form-action 'self'; base-uri 'none'"
)


@dataclass(frozen=True)
class PortalRef:
    member_id: str
    domain: str
    client_endpoint: str


@dataclass(frozen=True)
class UserRef:
    id: int
    name: str
    is_admin: bool = False


@dataclass(frozen=True)
class Viewer:
    """Who is looking, as the portal confirmed at sign-in (carried by the session cookie)."""

    member_id: str
    user_id: int
    is_admin: bool = False


class PortalUnavailable(Exception):
    """The portal could not be asked (down, overloaded, a broken answer): not a refusal."""


class DashboardSource(Protocol):
    async def portal(self, member_id: str) -> PortalRef | None:
        """The installed portal with this member_id, or None."""
        ...

    async def verify_user(self, portal: PortalRef, auth_id: str) -> UserRef | None:
        """The user whose token AUTH_ID is, asked of the portal; None when the portal refuses it.
        Raises ``PortalUnavailable`` when the portal cannot answer: the page says 503."""
        ...

    async def report_input(self, viewer: Viewer, date_from: date | None, date_to: date | None) -> ReportInput:
        """The viewer's portal's report input, holding only the calls the viewer may see."""
        ...

    async def call_record(self, job_id: str) -> tuple[str, CallRecord] | None:
        """(member_id, record) of a job, or None."""
        ...

    async def can_see(self, viewer: Viewer, manager_id: int | None) -> bool:
        """Whether the viewer may see the calls of this manager (on his own portal)."""
        ...


# the portal could not answer; any other error is the portal refusing the token
_UNAVAILABLE = (B24TransportError, InternalServerError, QueryLimitExceeded, OperationTimeLimit)


async def verify_user_via_rest(client: B24Client) -> UserRef | None:
    """``user.current`` (and ``user.admin``) called through ``client``, which must carry the user's
    own AUTH_ID (``PortalClients.for_user``): the portal, not the form, says who this is. None when
    the portal refuses the token; ``PortalUnavailable`` when it cannot answer. For DashboardSource
    implementations."""
    try:
        user = await client.call("user.current")
    except _UNAVAILABLE as exc:
        raise PortalUnavailable(str(exc)) from exc
    except B24Error as exc:
        log.info("dashboard: the portal refused a user token (%s)", exc.code)
        return None
    if not isinstance(user, dict) or not str(user.get("ID", "")).isdigit():
        return None
    name = " ".join(part for part in (str(user.get("NAME") or ""), str(user.get("LAST_NAME") or "")) if part)
    try:
        is_admin = bool(await client.call("user.admin"))
    except _UNAVAILABLE as exc:
        raise PortalUnavailable(str(exc)) from exc
    except B24Error:
        is_admin = False
    return UserRef(id=int(user["ID"]), name=name or f"#{user['ID']}", is_admin=is_admin)


def _norm_domain(value: str) -> str:
    value = value.strip().lower()
    if "://" in value:
        value = urlsplit(value).netloc
    return value.rstrip("/")


def _html(body: str, status: int = 200) -> web.Response:
    resp = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    resp.headers["Content-Security-Policy"] = _CSP
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"  # signed links must not leak to other sites
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def _error(status: int, heading: str, message: str) -> web.Response:
    return _html(render_error_page(status, heading, message), status)


def _unauthorized() -> web.Response:
    return _error(
        401,
        "Нужен вход через Bitrix24",
        "Откройте приложение из вашего портала Bitrix24: без сессии портала данные не показываются.",
    )


def _presented_session(request: web.Request) -> tuple[str | None, str | None]:
    """(token, where) of the session the request carries: cookie, header or ``?s=``."""
    for where, token in (
        ("cookie", request.cookies.get(SESSION_COOKIE)),
        ("header", request.headers.get(SESSION_HEADER)),
        ("url", request.query.get(SESSION_PARAM)),
    ):
        if token:
            return token, where
    return None, None


def _with_session(url: str, token: str | None) -> str:
    if not token:
        return url
    return f"{url}{'&' if '?' in url else '?'}{SESSION_PARAM}={quote(token, safe='')}"


def _viewer(session: Session) -> Viewer:
    return Viewer(session.member_id, session.user_id, session.is_admin)


def _parse_date(value: str | None) -> date | None:
    if not value:
        return None
    return date.fromisoformat(value)


class _Dashboard:
    def __init__(self, source: DashboardSource, key: bytes, public_url: str, session_ttl_s: int) -> None:
        self.source = source
        self.key = key
        self.public_url = public_url.rstrip("/")
        self.secure = self.public_url.lower().startswith("https://")
        self.session_ttl_s = session_ttl_s
        self.categories: list[Category] = standard_categories_or_none()

    # --- authentication ------------------------------------------------------------------------
    async def _from_portal(self, fields: dict[str, str]) -> tuple[web.Response | None, Any]:
        """(error response, None) or (None, (member_id, user)) for the AUTH_ID fields."""
        member_id, auth_id, domain = (
            fields.get("member_id", ""),
            fields.get("AUTH_ID", ""),
            fields.get("DOMAIN", ""),
        )
        if not member_id or not auth_id or not domain:
            return _error(
                403, "Неполные данные портала", "Запрос не содержит member_id, DOMAIN и AUTH_ID."
            ), None
        portal = await self.source.portal(member_id)
        if portal is None or _norm_domain(portal.domain) != _norm_domain(domain):
            log.warning(
                "dashboard: unknown portal or domain mismatch (member_id=%s, domain=%s)", member_id, domain
            )
            return _error(
                403,
                "Портал не распознан",
                "Приложение не установлено на этом портале или адрес портала не совпадает.",
            ), None
        try:
            user = await self.source.verify_user(portal, auth_id)
        except PortalUnavailable as exc:
            log.warning("dashboard: portal %s unreachable while verifying a user: %s", portal.domain, exc)
            return _error(
                503, "Портал недоступен", "Не удалось проверить сессию на портале. Повторите позже."
            ), None
        if user is None:  # the portal did not vouch for the person: not signed in (401), not forbidden
            return _error(
                401,
                "Сессия Bitrix24 недействительна",
                "Портал не подтвердил вашу авторизацию. Откройте приложение заново.",
            ), None
        return None, (portal.member_id, user)

    def _sign(self, member_id: str, user: UserRef) -> str:
        return sign_session(
            self.key,
            member_id=member_id,
            user_id=user.id,
            user_name=user.name,
            is_admin=user.is_admin,
            ttl_s=self.session_ttl_s,
        )

    def _set_session(self, resp: web.StreamResponse, token: str) -> None:
        # inside the portal's iframe the cookie is third-party: browsers send it only with
        # SameSite=None, which they accept only with Secure, so plain-http setups get Lax
        resp.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=self.session_ttl_s,
            path="/",
            httponly=True,
            secure=self.secure,
            samesite="None" if self.secure else "Lax",
        )

    async def _fields(self, request: web.Request) -> dict[str, str]:
        fields = {k: v for k, v in request.query.items()}
        if request.method == "POST":
            try:
                form = await request.post()
            # not UTF-8, an unknown charset, a broken or endless multipart
            except (ValueError, LookupError, AssertionError, HttpProcessingError):
                raise web.HTTPBadRequest(text="the form cannot be read") from None
            fields.update({k: v for k, v in form.items() if isinstance(v, str)})
        return fields

    # --- routes --------------------------------------------------------------------------------
    async def index(self, request: web.Request) -> web.StreamResponse:
        fields = await self._fields(request)
        fresh = False
        if "AUTH_ID" in fields or "member_id" in fields:
            error, who = await self._from_portal(fields)
            if error is not None:
                return error
            member_id, user = who
            viewer, user_name = Viewer(member_id, user.id, user.is_admin), user.name
            token: str | None = self._sign(member_id, user)
            fresh = True
        else:
            token, _ = _presented_session(request)
            session = verify_session(self.key, token)
            if session is None:
                return _unauthorized()
            viewer, user_name = _viewer(session), session.user_name
        try:
            date_from, date_to = _parse_date(fields.get("from")), _parse_date(fields.get("to"))
        except ValueError:
            return _error(400, "Неверная дата", "Даты периода указываются в формате ГГГГ-ММ-ДД.")
        data = build_report(
            self._with_local_links(await self.source.report_input(viewer, date_from, date_to), token)
        )
        resp = _html(
            render_report_html(
                data,
                live_json_url=_with_session("api/report.json", token),
                user_name=user_name,
                session=(SESSION_PARAM, token) if token else None,
            )
        )
        if fresh and token:
            self._set_session(resp, token)
        return resp

    async def report_json(self, request: web.Request) -> web.StreamResponse:
        token, _ = _presented_session(request)
        session = verify_session(self.key, token)
        if session is None:
            return web.json_response({"error": "unauthorized"}, status=401)
        try:
            date_from, date_to = _parse_date(request.query.get("from")), _parse_date(request.query.get("to"))
        except ValueError:
            return web.json_response({"error": "bad_date", "detail": "use YYYY-MM-DD"}, status=400)
        data = build_report(
            self._with_local_links(
                await self.source.report_input(_viewer(session), date_from, date_to), token
            )
        )
        resp = web.Response(text=data.model_dump_json(), content_type="application/json")
        resp.headers["Cache-Control"] = "no-store"
        return resp

    async def call_page(self, request: web.Request) -> web.StreamResponse:
        job_id = request.match_info["job_id"]
        exp, sig = request.query.get("exp"), request.query.get("sig")
        back_url: str | None = None
        if exp is not None or sig is not None:
            if not verify_call_link(self.key, job_id, exp, sig):
                return _error(403, "Ссылка недействительна", "Ссылка на звонок устарела или повреждена.")
            found = await self.source.call_record(job_id)
            if found is None:
                return _error(404, "Звонок не найден", "Такого звонка нет или он удалён.")
        else:
            token, _ = _presented_session(request)
            session = verify_session(self.key, token)
            if session is None:
                return _unauthorized()
            found = await self.source.call_record(job_id)
            if found is None:
                return _error(404, "Звонок не найден", "Такого звонка нет или он удалён.")
            if found[0] != session.member_id:
                return _error(403, "Нет доступа", "Этот звонок принадлежит другому порталу.")
            if not await self.source.can_see(_viewer(session), found[1].manager_id):
                return _error(
                    403,
                    "Нет доступа",
                    "Это звонок другого сотрудника. Разбор звонка видят сам сотрудник, "
                    "руководитель его отдела и администраторы портала.",
                )
            back_url = _with_session("../", token)
        # names: the standard ones, and custom ones from the objections' own category_name
        return _html(render_call_page(found[1], self.categories, back_url=back_url))

    @staticmethod
    def _with_local_links(input: ReportInput, token: str | None) -> ReportInput:
        # inside the iframe the session opens call pages: relative links, carrying the session
        # for browsers that drop the third-party cookie
        records = [
            r.model_copy(update={"page_url": _with_session(f"calls/{r.job_id}", token)}) if r.job_id else r
            for r in input.records
        ]
        return input.model_copy(update={"records": records})


def setup_dashboard_routes(
    app: web.Application,
    source: DashboardSource,
    signing_key: bytes,
    *,
    public_url: str,
    session_ttl_s: int = SESSION_TTL_S,
) -> None:
    dash = _Dashboard(source, signing_key, public_url, session_ttl_s)
    app.router.add_route("GET", "/", dash.index)
    app.router.add_route("POST", "/", dash.index)
    app.router.add_route("GET", "/api/report.json", dash.report_json)
    app.router.add_route("GET", "/calls/{job_id}", dash.call_page)
