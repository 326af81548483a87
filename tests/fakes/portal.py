"""A faithful fake Bitrix24 portal: a real aiohttp server on 127.0.0.1 with in-memory state.

Follows the official REST docs (``bitrix24/b24restdocs``; each behaviour names its page) and the
contract in ``/work/shared/docs/bitrix24-contract.md``: an OAuth server that renews only the
refresh tokens it issued (shared by several fakes with ``oauth_server=``, as oauth.bitrix.info
is), REST methods (OAuth ``/rest/{method}`` and inbound webhook ``/rest/{user}/{secret}/{method}``)
taking exactly their documented parameters (unknown keys ignored), ``batch`` with ``$result[..]``
references, the leaky-bucket limit (503 or 429 ``QUERY_LIMIT_EXCEEDED``), the documented error
codes (``ERROR_CORE``, ``ENGINE_REGISTER_ERROR_*``...), error injection, signed
``/rest/download.json`` links that answer an nginx 404 page without the download headers, both
install forms (``install``: ONAPPINSTALL; ``install_in_frame``: the install page, then
``BX24.installFinish()``, before which no event is sent), and outbound deliveries (events, bot
events) form-encoded the way PHP ``http_build_query`` does it.

Like Bitrix24, list rows carry numbers as strings (``"ID": "17"``); cast where you read them.

Counters for assertions: ``requests`` (HTTP REST requests: (method, monotonic time)), ``calls``
(every method run, batch commands included: (method, params)), ``count(method)`` (over ``calls``),
``comments``, ``bot_messages``, ``layout_blocks``, ``transcriptions``, ``bindings``,
``ai_engines``, ``refresh_count``, ``downloads``, ``refused_downloads``, ``notifications``,
``im_messages``, ``withheld_events``, ``install_finish_calls``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
from aiohttp import web

from callcoach.b24.auth import PortalCredentials
from callcoach.b24.events import unflatten
from tests.fakes.faults import Faults
from tests.fakes.local_http import serve_locally

PAGE = 50
MSK = timezone(timedelta(hours=3))
MAX_BOT_MESSAGE = 20_000
# what nginx answers for a missing file: the body a download without the right headers may get
NGINX_404 = (
    "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
    "<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


class FakeError(Exception):
    def __init__(self, code: str, description: str = "", status: int = 400) -> None:
        super().__init__(code)
        self.code, self.description, self.status = code, description, status


@dataclass
class FakeUser:
    id: int
    name: str
    last_name: str = ""
    department_ids: list[int] = field(default_factory=list)
    is_admin: bool = False

    def row(self) -> dict[str, Any]:
        return {
            "ID": str(self.id),
            "ACTIVE": True,
            "NAME": self.name,
            "LAST_NAME": self.last_name,
            "EMAIL": f"user{self.id}@example.test",
            "UF_DEPARTMENT": list(self.department_ids),
            "IS_ONLINE": "N",
            "USER_TYPE": "employee",
        }


@dataclass
class FakeDepartment:
    id: int
    name: str
    head_user_id: int | None = None
    parent: int | None = None

    def row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"ID": str(self.id), "NAME": self.name, "SORT": 500}
        if self.parent is not None:
            row["PARENT"] = str(self.parent)
        if self.head_user_id is not None:
            row["UF_HEAD"] = str(self.head_user_id)
        return row


@dataclass
class FakeCall:
    id: int
    call_id: str
    user_id: int
    duration: int
    failed_code: int
    call_type: int
    start_date: datetime
    phone_number: str
    recording: bytes | None
    record_after_polls: int
    crm_activity_id: int | None
    bindings: list[tuple[int, int]]
    crm_entity_type: str | None
    crm_entity_id: int | None
    record_file_id: int | None = None
    polls: int = 0

    def row(self) -> dict[str, Any]:
        visible = self.record_file_id is not None and self.polls > self.record_after_polls
        s = lambda v: None if v is None else str(v)  # noqa: E731  Bitrix sends numbers as text
        return {
            "ID": str(self.id),
            "CALL_ID": self.call_id,
            "CALL_TYPE": str(self.call_type),
            "PORTAL_USER_ID": str(self.user_id),
            "PORTAL_NUMBER": "reg123",
            "PHONE_NUMBER": self.phone_number,
            "CALL_START_DATE": self.start_date.isoformat(),
            "CALL_DURATION": str(self.duration),
            "CALL_FAILED_CODE": str(self.failed_code),
            "CALL_FAILED_REASON": "Success call" if self.failed_code == 200 else "Failed",
            "RECORD_FILE_ID": s(self.record_file_id) if visible else None,
            "RECORD_DURATION": str(self.duration) if visible else None,
            "CALL_RECORD_URL": "",
            "CRM_ENTITY_TYPE": self.crm_entity_type,
            "CRM_ENTITY_ID": s(self.crm_entity_id),
            "CRM_ACTIVITY_ID": s(self.crm_activity_id),
            "COST": "0.0000",
            "COST_CURRENCY": "RUR",
            "CALL_VOTE": None,
            "CALL_CATEGORY": "external" if self.call_type != 5 else "info",
        }


@dataclass
class FakeBot:
    id: int
    code: str
    name: str
    event_mode: str
    webhook_url: str | None
    fields: dict[str, Any]
    commands: dict[str, int] = field(default_factory=dict)
    queue: list[dict[str, Any]] = field(default_factory=list)
    acked: int = 0

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "type": self.fields.get("type", "bot"),
            "isHidden": False,
            "isSupportOpenline": False,
            "isReactionsEnabled": True,
            "backgroundId": None,
            "language": "ru",
            "moduleId": "rest",
            "appId": "local.callcoach",
            "eventMode": self.event_mode,
            "countMessage": 0,
            "countCommand": len(self.commands),
            "countChat": 0,
            "countUser": 0,
        }


def php_form(data: Mapping[str, Any]) -> str:
    """``http_build_query`` as PHP does it: brackets escaped, true → 1, null dropped."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(f"{prefix}[{k}]" if prefix else str(k), v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)
        elif isinstance(value, bool):
            pairs.append((prefix, "1" if value else "0"))
        else:
            pairs.append((prefix, str(value)))

    walk("", data)
    return urlencode(pairs)


def _int(value: Any, default: int | None = None) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _sort_key(value: Any) -> tuple[int, int, str]:
    number = _int(value)
    return (0, number, "") if number is not None else (1, 0, str(value or ""))


def _row_key(key: str, row: Mapping[str, Any]) -> tuple[int, int, str]:
    return _sort_key(row.get(key))


def _parse_dt(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        parsed = datetime.fromisoformat(str(value).replace(" ", "T"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=MSK)


_OP_RE = re.compile(r"^(>=|<=|><|!=|!@|>|<|=|!|@|%)?(.+)$")


def _match_filter(row: Mapping[str, Any], flt: Mapping[str, Any]) -> bool:
    """Bitrix filter keys: ``FIELD``, ``>FIELD``, ``>=FIELD``, ``<=FIELD``, ``><FIELD`` [a, b], ``!FIELD``."""
    for raw_key, expected in flt.items():
        m = _OP_RE.match(str(raw_key))
        assert m
        op, key = m.group(1) or "=", m.group(2)
        actual = row.get(key, row.get(key.upper()))
        if op == "><":
            lo, hi = (list(expected.values()) if isinstance(expected, dict) else list(expected))[:2]
            if not (_cmp(actual, lo) >= 0 and _cmp(actual, hi) <= 0):
                return False
            continue
        if op in ("=", "!", "!=", "@", "!@"):
            options = (
                expected
                if isinstance(expected, (list, tuple))
                else (list(expected.values()) if isinstance(expected, dict) else [expected])
            )
            hit = any(_cmp(actual, o) == 0 for o in options)
            if hit != (op in ("=", "@")):
                return False
            continue
        if op == "%":
            if str(expected).lower() not in str(actual or "").lower():
                return False
            continue
        c = _cmp(actual, expected)
        if c is None or not {">": c > 0, "<": c < 0, ">=": c >= 0, "<=": c <= 0}[op]:
            return False
    return True


def _cmp(a: Any, b: Any) -> Any:
    if a is None:
        return None
    if isinstance(a, list):  # UF_DEPARTMENT contains
        return 0 if any(_cmp(x, b) == 0 for x in a) else 1
    ia, ib = _int(a), _int(b)
    if (
        ia is not None
        and ib is not None
        and re.fullmatch(r"-?\d+", str(a))
        and re.fullmatch(r"-?\d+", str(b))
    ):
        return (ia > ib) - (ia < ib)
    da, db = _parse_dt(a), _parse_dt(b)
    if da is not None and db is not None and "-" in str(a) and "-" in str(b):
        return (da > db) - (da < db)
    sa, sb = str(a), str(b)
    return (sa > sb) - (sa < sb)


@dataclass
class _Failure:
    code: str
    status: int
    times: int
    description: str
    reset_in: float


class FakePortal:
    """See module docstring. Use ``async with FakePortal() as portal:``."""

    def __init__(
        self,
        *,
        rate: float = 2.0,
        burst: int = 50,
        limit_status: int = 503,
        enforce_limit: bool = True,
        client_id: str = "local.fakeapp0000000001",
        client_secret: str = "fake-client-secret-0123456789",
        member_id: str | None = None,
        application_token: str | None = None,
        webhook_user_id: int = 1,
        ai_check_timeout_s: float = 5.0,
        oauth_server: FakePortal | None = None,
        bare_download_status: int = 200,
    ) -> None:
        self.rate, self.burst = rate, burst
        self.limit_status = limit_status
        self.enforce_limit = enforce_limit
        self.client_id, self.client_secret = client_id, client_secret
        self.member_id = member_id or secrets.token_hex(16)
        self.application_token = application_token or secrets.token_hex(16)
        self.webhook_user_id = webhook_user_id
        self.webhook_secret = secrets.token_hex(8)
        self.ai_check_timeout_s = ai_check_timeout_s
        # settings/how-to-call-rest-api/general-principles.md: a download without the browser-like
        # headers may get "the Content-Disposition header with a file name but the response body
        # contains an Nginx 404"; the status is not documented: 200 (the hard case) by default.
        self.bare_download_status = bare_download_status
        self.refused_downloads: list[dict[str, str]] = []
        # settings/app-installation/installation-finish.md: an app with an interface is "not
        # installed" until its install page calls BX24.installFinish(); an "API only" app is
        # installed at once by its ONAPPINSTALL callback. Until then no event is sent.
        self.app_installed = False
        self.install_finish_calls = 0
        self.withheld_events: list[dict[str, Any]] = []
        self.scope = "crm,telephony,disk,user_brief,department,imbot,im,ai_admin,placement"

        # tokens: access → {"expired": bool, "user_id": int}; refresh tokens single use.
        # One OAuth server issues and renews the tokens of many portals, as oauth.bitrix.info does
        # (settings/oauth/auto-renewal.md): ``oauth_server`` is the fake whose /oauth/token/ plays
        # it (this portal itself by default). It renews only refresh tokens it issued, and answers
        # with the member_id and endpoints of the portal the token belongs to.
        self._access: dict[str, dict[str, Any]] = {}
        self._oauth: FakePortal = oauth_server or self
        self._refresh_owner: dict[str, FakePortal] = {}  # on the OAuth server: refresh → portal
        self.access_token = ""
        self.refresh_token = ""
        self.refresh_count = 0

        # leaky bucket + records
        self._level = 0.0
        self._level_at = time.monotonic()
        self.requests: list[tuple[str, float]] = []
        self.rejected: list[tuple[str, float]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._failures: dict[str, deque[_Failure]] = {}
        self._download_failures: deque[int] = deque()

        # state
        self._ids = itertools.count(1000)
        self.users: dict[int, FakeUser] = {}
        self.departments: dict[int, FakeDepartment] = {}
        self.deals: dict[int, dict[str, Any]] = {}
        self.activities: dict[int, dict[str, Any]] = {}
        self.calls_by_id: dict[str, FakeCall] = {}
        self.files: dict[int, dict[str, Any]] = {}
        self.bindings: list[dict[str, Any]] = []  # event.bind
        self.offline_events: list[dict[str, Any]] = []
        self.comments: list[dict[str, Any]] = []
        self.layout_blocks: dict[tuple[int, int, int], dict[str, Any]] = {}
        self.transcriptions: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self.im_messages: list[dict[str, Any]] = []
        self.bots: dict[int, FakeBot] = {}
        self.bot_messages: list[dict[str, Any]] = []
        self.input_actions: list[dict[str, Any]] = []
        self.ai_engines: dict[str, dict[str, Any]] = {}
        self.downloads: list[int] = []
        self.deliveries: list[dict[str, Any]] = []  # outbound POSTs we made (url, event, status)
        self._event_seq = itertools.count(1)

        self.add_user(1, "Админ", [1], is_admin=True, last_name="Портала")
        self.add_department(1, "Компания", head_user_id=1)

        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0
        self.faults = Faults(self.expire_access_tokens)  # the fault-injection switch (faults.py)

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> FakePortal:
        app = web.Application(client_max_size=50 * 1024 * 1024, middlewares=[self.faults.middleware])
        app.router.add_route("GET", "/oauth/token/", self._token)
        app.router.add_route("GET", "/rest/download.json", self._download)
        app.router.add_route("*", "/rest/{tail:.*}", self._rest)
        self._runner, self.port = await serve_locally(app, access_log=None)
        self._session = aiohttp.ClientSession()
        self.access_token, self.refresh_token = self._issue_tokens()
        return self

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakePortal:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def client_endpoint(self) -> str:
        return f"{self.url}/rest/"

    @property
    def server_endpoint(self) -> str:
        # The OAuth server's REST address (https://oauth.bitrix.info/rest/ on the real one);
        # B24Client derives "{url}/oauth/token/" from it (trailing /rest/ → /oauth/token/).
        return f"{self._oauth.url}/rest/"

    @property
    def oauth_url(self) -> str:
        """The token endpoint of this portal's OAuth server (CALLCOACH_OAUTH_URL in tests)."""
        return f"{self._oauth.url}/oauth/token/"

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/rest/{self.webhook_user_id}/{self.webhook_secret}/"

    def credentials(self) -> PortalCredentials:
        """Credentials as if freshly installed (the current token pair)."""
        return PortalCredentials(
            member_id=self.member_id,
            domain=self.domain,
            client_endpoint=self.client_endpoint,
            server_endpoint=self.server_endpoint,
            access_token=self.access_token,
            refresh_token=self.refresh_token,
            expires_at=time.time() + 3600,
            application_token=self.application_token,
            scope=self.scope,
        )

    # --- controls ----------------------------------------------------------------------------
    def expire_access_tokens(self) -> None:
        for info in self._access.values():
            info["expired"] = True

    def revoke_refresh_tokens(self) -> None:
        """Every refresh now answers invalid_grant (the app was removed / token too old)."""
        owners = self._oauth._refresh_owner
        for token in [t for t, owner in owners.items() if owner is self]:
            del owners[token]

    def fail_next(
        self,
        method: str,
        error_code: str,
        status: int = 500,
        times: int = 1,
        *,
        description: str = "",
        reset_in: float = 0.0,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (``*`` = any) with this error."""
        self._failures.setdefault(method.lower(), deque()).append(
            _Failure(error_code, status, times, description or error_code, reset_in)
        )

    def fail_next_download(self, status: int = 500, times: int = 1) -> None:
        self._download_failures.extend([status] * times)

    def count(self, method: str) -> int:
        name = method.lower()
        return sum(1 for m, _ in self.calls if m == name)

    def http_count(self, method: str | None = None) -> int:
        return (
            len(self.requests) if method is None else sum(1 for m, _ in self.requests if m == method.lower())
        )

    def max_requests_in_window(self, seconds: float) -> int:
        """Most accepted REST requests inside any window of ``seconds`` (for limit assertions)."""
        times = sorted(t for _, t in self.requests)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] > seconds:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    # --- scenario helpers ----------------------------------------------------------------------
    def add_user(
        self,
        id: int,
        name: str,
        department_ids: Iterable[int] = (),
        is_admin: bool = False,
        *,
        last_name: str = "",
    ) -> FakeUser:
        if " " in name and not last_name:
            name, last_name = name.split(" ", 1)
        user = FakeUser(id, name, last_name, list(department_ids), is_admin)
        self.users[id] = user
        return user

    def user_auth_id(self, user_id: int) -> str:
        """A fresh access token of ``user_id``: the AUTH_ID the portal posts to the app's page when
        that user opens it."""
        if user_id not in self.users:
            raise KeyError(f"no user {user_id}")
        return self._issue_tokens(user_id)[0]

    def add_department(
        self, id: int, name: str, head_user_id: int | None = None, parent: int | None = None
    ) -> FakeDepartment:
        dep = FakeDepartment(id, name, head_user_id, parent)
        self.departments[id] = dep
        return dep

    def add_deal(
        self,
        id: int | None = None,
        title: str = "Сделка",
        *,
        assigned_by_id: int = 1,
        stage_id: str = "NEW",
        opportunity: float = 0.0,
        contact_id: int | None = None,
    ) -> dict[str, Any]:
        deal_id = id if id is not None else next(self._ids)
        deal = {
            "ID": str(deal_id),
            "TITLE": title,
            "STAGE_ID": stage_id,
            "ASSIGNED_BY_ID": str(assigned_by_id),
            "OPPORTUNITY": f"{opportunity:.2f}",
            "CURRENCY_ID": "RUB",
            "CONTACT_ID": None if contact_id is None else str(contact_id),
            "DATE_CREATE": datetime.now(MSK).isoformat(timespec="seconds"),
        }
        self.deals[deal_id] = deal
        return deal

    def add_call(
        self,
        call_id: str,
        *,
        recording: bytes | Path | None,
        user_id: int,
        duration: int,
        failed_code: int = 200,
        call_type: int = 1,
        start_date: datetime | None = None,
        record_after_polls: int = 0,
        crm_activity_id: int | None = None,
        bindings: Iterable[tuple[int, int]] = (),
        crm_entity_type: str | None = None,
        crm_entity_id: int | None = None,
        phone_number: str = "+79990001122",
    ) -> FakeCall:
        data = recording.read_bytes() if isinstance(recording, Path) else recording
        start = start_date or datetime.now(MSK) - timedelta(seconds=duration + 5)
        if start.tzinfo is None:
            start = start.replace(tzinfo=MSK)
        call = FakeCall(
            id=next(self._ids),
            call_id=call_id,
            user_id=user_id,
            duration=duration,
            failed_code=failed_code,
            call_type=call_type,
            start_date=start,
            phone_number=phone_number,
            recording=data,
            record_after_polls=record_after_polls,
            crm_activity_id=crm_activity_id,
            bindings=list(bindings),
            crm_entity_type=crm_entity_type,
            crm_entity_id=crm_entity_id,
        )
        if data is not None:
            file_id = next(self._ids)
            self.files[file_id] = {
                "id": file_id,
                "data": data,
                "name": f"{call_id}.mp3",
                "token": f"disk|{secrets.token_urlsafe(24)}",
            }
            call.record_file_id = file_id
        if crm_activity_id is not None:
            owner = call.bindings[0] if call.bindings else (3, crm_entity_id or 0)
            self.activities[crm_activity_id] = {
                "ID": str(crm_activity_id),
                "OWNER_TYPE_ID": str(owner[0]),
                "OWNER_ID": str(owner[1]),
                "TYPE_ID": "2",
                "PROVIDER_ID": "VOXIMPLANT_CALL",
                "PROVIDER_TYPE_ID": "CALL",
                "ORIGIN_ID": f"VI_{call_id}",
                "SUBJECT": f"Звонок {phone_number}",
                "RESPONSIBLE_ID": str(user_id),
                "DIRECTION": "2" if call_type == 1 else "1",
                "START_TIME": start.isoformat(),
                "COMPLETED": "Y",
            }
        self.calls_by_id[call_id] = call
        return call

    def call_end_event_data(self, call_id: str) -> dict[str, Any]:
        """``data`` of ONVOXIMPLANTCALLEND for a call added with ``add_call``."""
        c = self.calls_by_id[call_id]
        return {
            "CALL_ID": c.call_id,
            "CALL_TYPE": c.call_type,
            "PHONE_NUMBER": c.phone_number,
            "PORTAL_NUMBER": "reg123",
            "PORTAL_USER_ID": c.user_id,
            "CALL_DURATION": c.duration,
            "CALL_START_DATE": c.start_date.isoformat(),
            "COST": "0.0000",
            "COST_CURRENCY": "RUR",
            "CALL_FAILED_CODE": c.failed_code,
            "CALL_FAILED_REASON": "Success call" if c.failed_code == 200 else "Failed",
            "CRM_ACTIVITY_ID": c.crm_activity_id,
        }

    # --- tokens --------------------------------------------------------------------------------
    def _issue_tokens(self, user_id: int = 1) -> tuple[str, str]:
        access, refresh = secrets.token_hex(24), secrets.token_hex(24)
        self._access[access] = {"expired": False, "user_id": user_id}
        self._oauth._refresh_owner[refresh] = self
        return access, refresh

    def _auth_block(self, *, with_tokens: bool = True, user_id: int = 1) -> dict[str, Any]:
        block: dict[str, Any] = {
            "domain": self.domain,
            "server_endpoint": self.server_endpoint,
            "client_endpoint": self.client_endpoint,
            "member_id": self.member_id,
            "application_token": self.application_token,
        }
        if with_tokens:
            access, refresh = self._issue_tokens(user_id)
            block.update(
                {
                    "access_token": access,
                    "refresh_token": refresh,
                    "expires": int(time.time()) + 3600,
                    "expires_in": 3600,
                    "scope": self.scope,
                    "status": "L",
                    "user_id": user_id,
                }
            )
        return block

    async def _token(self, request: web.Request) -> web.Response:
        """The OAuth server's renewal (settings/oauth/auto-renewal.md): GET with grant_type,
        client_id, client_secret, refresh_token. Only refresh tokens this server issued are
        renewed, each once; the answer names the portal the token belongs to."""
        q = request.query
        if q.get("grant_type") != "refresh_token":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if q.get("client_id") != self.client_id or q.get("client_secret") != self.client_secret:
            return web.json_response(
                {"error": "invalid_client", "error_description": "Invalid client credentials"}, status=401
            )
        owner = self._refresh_owner.pop(q.get("refresh_token", ""), None)  # single use
        if owner is None:
            return web.json_response(
                {"error": "invalid_grant", "error_description": "Invalid refresh token"}, status=400
            )
        owner.access_token, owner.refresh_token = owner._issue_tokens()
        owner.refresh_count += 1
        return web.json_response(
            {
                "access_token": owner.access_token,
                "refresh_token": owner.refresh_token,
                "expires": int(time.time()) + 3600,
                "expires_in": 3600,
                "scope": owner.scope,
                # auto-renewal.md: "domain" is the authorization server's domain
                # (oauth.bitrix.info), not the portal's; the portal is in client_endpoint.
                "domain": self.domain,
                "server_endpoint": self.server_endpoint,
                "status": "L",
                "client_endpoint": owner.client_endpoint,
                "member_id": owner.member_id,
                "user_id": 1,
            }
        )

    # --- downloads -----------------------------------------------------------------------------
    _TECHNICAL_AGENT = re.compile(r"^(python|aiohttp|curl|wget|go-http|java|okhttp)[/-]|aiohttp/", re.I)

    def _download_headers_missing(self, request: web.Request) -> list[str]:
        """settings/how-to-call-rest-api/general-principles.md: a signed download link is fetched
        with ``User-Agent: integration-name/version`` (not empty, not a technical value),
        ``Accept: */*`` (or the file's MIME type), ``Accept-Language`` and
        ``Referer: https://<portal>/``. What is missing, by name."""
        h = request.headers
        missing = []
        agent = h.get("User-Agent", "").strip()
        if not agent or self._TECHNICAL_AGENT.search(agent):
            missing.append("User-Agent")
        if not h.get("Accept", "").strip():
            missing.append("Accept")
        if not h.get("Accept-Language", "").strip():
            missing.append("Accept-Language")
        referer = h.get("Referer", "")
        if urlsplit(referer).netloc.lower() != self.domain.lower():
            missing.append("Referer")
        return missing

    async def _download(self, request: web.Request) -> web.StreamResponse:
        """``DOWNLOAD_URL`` of disk.file.get (api-reference/disk/file/disk-file-get.md):
        ``/rest/download.json?auth=…&token=disk|…``, signed: a wrong token is a 404."""
        meta = next((m for m in self.files.values() if request.query.get("token") == m["token"]), None)
        if meta is None or request.query.get("auth") not in self._access:
            return web.Response(status=404, text="not found")
        missing = self._download_headers_missing(request)
        if missing:
            self.refused_downloads.append({"missing": ", ".join(missing), "name": meta["name"]})
            return web.Response(
                status=self.bare_download_status,
                body=NGINX_404.encode(),
                content_type="text/html",
                headers={"Content-Disposition": f'attachment; filename="{meta["name"]}"'},
            )
        if self._download_failures:
            return web.Response(status=self._download_failures.popleft(), text="error")
        self.downloads.append(meta["id"])
        return web.Response(
            body=meta["data"],
            content_type="audio/mpeg",
            headers={"Content-Disposition": f'attachment; filename="{meta["name"]}"'},
        )

    # --- REST entry ----------------------------------------------------------------------------
    def _time_block(self, started: float, started_wall: float, reset_in: float = 0.0) -> dict[str, Any]:
        finish = time.time()
        return {
            "start": started_wall,
            "finish": finish,
            "duration": finish - started_wall,
            "processing": time.monotonic() - started,
            "date_start": datetime.fromtimestamp(started_wall, MSK).isoformat(timespec="seconds"),
            "date_finish": datetime.fromtimestamp(finish, MSK).isoformat(timespec="seconds"),
            "operating": 0,
            "operating_reset_at": int(finish + reset_in) if reset_in else int(finish) + 600,
        }

    def _bucket_admit(self) -> bool:
        # settings/performance/limits.md: a leaky bucket per portal, 2/s drain and burst 50
        now = time.monotonic()
        self._level = max(0.0, self._level - (now - self._level_at) * self.rate)
        self._level_at = now
        if self._level + 1.0 > self.burst + 1e-9:
            return False
        self._level += 1.0
        return True

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = unflatten(list(parse_qsl(request.query_string, keep_blank_values=True)))
        if request.method == "POST" and request.can_read_body:
            raw = await request.read()
            if raw.strip():
                if "json" in (request.content_type or ""):
                    body = json.loads(raw)
                    if not isinstance(body, dict):
                        raise FakeError("INVALID_REQUEST", "Body must be an object", 400)
                    params.update(body)
                else:
                    params.update(unflatten(parse_qsl(raw.decode(), keep_blank_values=True)))
        return params

    async def _rest(self, request: web.Request) -> web.Response:
        started, started_wall = time.monotonic(), time.time()
        tail = request.match_info["tail"].strip("/")
        webhook = re.fullmatch(r"(\d+)/([^/]+)/(.+)", tail)
        method = (webhook.group(3) if webhook else tail).lower()
        method = re.sub(r"\.(json|xml)$", "", method)

        def err(e: FakeError) -> web.Response:
            return web.json_response(
                {
                    "error": e.code,
                    "error_description": e.description,
                    "time": self._time_block(started, started_wall),
                },
                status=e.status,
            )

        try:
            params = await self._read_params(request)
        except (ValueError, UnicodeDecodeError):
            return err(FakeError("INVALID_REQUEST", "Malformed body", 400))
        # Auth before the limit, as the portal does.
        if webhook:
            if int(webhook.group(1)) != self.webhook_user_id or webhook.group(2) != self.webhook_secret:
                return err(FakeError("NO_AUTH_FOUND", "Wrong authorization data", 401))
            ctx = {"webhook": True, "user_id": self.webhook_user_id}
        else:
            token = params.pop("auth", None)
            if not token:
                return err(FakeError("NO_AUTH_FOUND", "Wrong authorization data", 401))
            info = self._access.get(str(token))
            if info is None:
                return err(FakeError("invalid_token", "Unable to get application by token", 401))
            if info["expired"]:
                return err(FakeError("expired_token", "The access token provided has expired.", 401))
            ctx = {"webhook": False, "user_id": info["user_id"], "token": str(token)}
        if self.enforce_limit and not self._bucket_admit():
            self.rejected.append((method, time.monotonic()))
            return err(FakeError("QUERY_LIMIT_EXCEEDED", "Too many requests", self.limit_status))
        self.requests.append((method, time.monotonic()))
        reset_in = 0.0
        try:
            failure = self._take_failure(method)
            if failure is not None:
                reset_in = failure.reset_in
                raise FakeError(failure.code, failure.description, failure.status)
            if method == "batch":
                result, extra = await self._batch(params, ctx), dict[str, Any]()
            else:
                result, extra = await self._run(method, params, ctx)
        except FakeError as e:
            return web.json_response(
                {
                    "error": e.code,
                    "error_description": e.description,
                    "time": self._time_block(started, started_wall, reset_in),
                },
                status=e.status,
            )
        body = {"result": result, **extra, "time": self._time_block(started, started_wall)}
        return web.json_response(body)

    def _take_failure(self, method: str) -> _Failure | None:
        for key in (method, "*"):
            queue = self._failures.get(key)
            if queue:
                failure = queue[0]
                failure.times -= 1
                if failure.times <= 0:
                    queue.popleft()
                return failure
        return None

    async def _run(
        self, method: str, params: dict[str, Any], ctx: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        self.calls.append((method, params))
        handler: Callable[..., Any] | None = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            raise FakeError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)
        out = handler(params, ctx)
        if asyncio.iscoroutine(out):
            out = await out
        if isinstance(out, _Page):
            return out.items, out.extra
        return out, {}

    # --- batch -----------------------------------------------------------------------------------
    _REF_RE = re.compile(r"\$result\[([^\[\]]+)\]((?:\[[^\[\]]*\])*)")

    async def _batch(self, params: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
        # settings/how-to-call-rest-api/batch.md: at most 50 commands, $result[key][field] references
        self.calls.append(("batch", params))
        cmd = params.get("cmd") or {}
        if isinstance(cmd, list):
            cmd = {str(i): v for i, v in enumerate(cmd)}
        if len(cmd) > 50:
            raise FakeError("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded", 400)
        halt = str(params.get("halt", "0")) in ("1", "true", "True")
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        totals: dict[str, Any] = {}
        nexts: dict[str, Any] = {}
        for key, line in cmd.items():
            method, _, query = str(line).partition("?")

            def resolve(m: re.Match[str]) -> str:
                value: Any = results.get(m.group(1))
                for part in re.findall(r"\[([^\[\]]*)\]", m.group(2)):
                    if isinstance(value, list) and part.isdigit() and int(part) < len(value):
                        value = value[int(part)]
                    elif isinstance(value, dict) and part in value:
                        value = value[part]
                    else:
                        return ""  # unresolved reference → empty string
                return "" if value is None or isinstance(value, (dict, list)) else str(value)

            query = self._REF_RE.sub(resolve, query)
            sub = unflatten(parse_qsl(query, keep_blank_values=True))
            try:
                if method.lower() == "batch":
                    raise FakeError("ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage")
                # fail_next(method) reaches nested commands too: the portal runs them as separate
                # methods, each with its own errors and its own OPERATION_TIME_LIMIT
                # (settings/performance/limits.md, "An external call to batch is not accounted...").
                nested = self._failures.get(method.lower())
                if nested:
                    failure = nested[0]
                    failure.times -= 1
                    if failure.times <= 0:
                        nested.popleft()
                    raise FakeError(failure.code, failure.description, failure.status)
                result, extra = await self._run(method.lower(), sub, ctx)
            except FakeError as e:
                errors[key] = {"error": e.code, "error_description": e.description}
                if halt:
                    break
                continue
            results[key] = result
            if "total" in extra:
                totals[key] = extra["total"]
            if "next" in extra:
                nexts[key] = extra["next"]
        # PHP encodes empty associative arrays as [].
        return {
            "result": results or [],
            "result_error": errors or [],
            "result_total": totals or [],
            "result_next": nexts or [],
            "result_time": [],
        }

    # --- paging helper -----------------------------------------------------------------------------
    @staticmethod
    def _page(rows: list[dict[str, Any]], start: Any) -> _Page:
        s = _int(start, 0) or 0
        if s == -1:
            return _Page(rows[:PAGE], {})
        s = max(0, s)
        chunk = rows[s : s + PAGE]
        extra: dict[str, Any] = {"total": len(rows)}
        if s + PAGE < len(rows):
            extra["next"] = s + PAGE
        return _Page(chunk, extra)

    @staticmethod
    def _sorted(
        rows: list[dict[str, Any]], order: Any, sort: Any = None, direction: Any = None
    ) -> list[dict[str, Any]]:
        keys: list[tuple[str, bool]] = []
        if isinstance(order, dict):
            keys = [(str(k).upper(), str(v).upper() == "DESC") for k, v in order.items()]
        elif sort:
            keys = [(str(sort).upper(), str(direction or "ASC").upper() == "DESC")]
        for key, desc in reversed(keys):
            rows = sorted(rows, key=partial(_row_key, key), reverse=desc)
        return rows

    @staticmethod
    def _filter_of(params: Mapping[str, Any]) -> dict[str, Any]:
        flt = params.get("filter", params.get("FILTER")) or {}
        return dict(flt) if isinstance(flt, dict) else {}

    def _require_app(self, ctx: Mapping[str, Any], method: str) -> None:
        if ctx.get("webhook"):
            raise FakeError("WRONG_AUTH_TYPE", f"Current authorization type is denied for {method}", 403)

    def _require_admin(self, ctx: Mapping[str, Any]) -> None:
        user = self.users.get(int(ctx.get("user_id") or 0))
        if user is None or not user.is_admin:
            raise FakeError("ACCESS_DENIED", "Access denied! Administrator access required", 403)

    # --- common methods ----------------------------------------------------------------------------
    def m_app_info(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/common/system/app-info.md; INSTALLED is false until installFinish
        # (settings/app-installation/installation-finish.md)
        self._require_app(ctx, "app.info")
        return {
            "ID": 7,
            "CODE": self.client_id,
            "VERSION": 1,
            "STATUS": "L",
            "INSTALLED": self.app_installed,
            "PAYMENT_EXPIRED": "N",
            "DAYS": None,
            "LANGUAGE_ID": "ru",
            "LICENSE": "ru_project",
        }

    def m_profile(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/common/users/profile.md
        user = self.users[int(ctx["user_id"])]
        return {"ID": str(user.id), "ADMIN": user.is_admin, "NAME": user.name, "LAST_NAME": user.last_name}

    def m_user_current(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/user/user-current.md
        return self.users[int(ctx["user_id"])].row()

    def m_user_admin(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/common/users/user-admin.md
        return self.users[int(ctx["user_id"])].is_admin

    # user.add's fields: what user.get filters on when given at the top level without FILTER
    _USER_FIELDS = frozenset(
        {"ID", "ACTIVE", "NAME", "LAST_NAME", "EMAIL", "UF_DEPARTMENT", "IS_ONLINE", "USER_TYPE"}
    )

    def m_user_get(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        """api-reference/user/user-get.md: ``sort`` and ``order`` strings, ``FILTER`` (with the
        ``>``, ``>=``, ``<``, ``<=``, ``@``, ``!``, ``%`` prefixes), ``start`` (pages of 50; -1
        skips the count, the page's tip), by default ascending ID. The page's own examples write
        SORT/ORDER and a top-level ``UF_DEPARTMENT``: keys are read case-insensitively and, without
        FILTER, the top-level user fields filter. Anything else (an ``order`` object) is ignored."""
        q = {str(k).upper(): v for k, v in p.items()}
        flt = q.get("FILTER")
        if isinstance(flt, dict):
            flt = dict(flt)
        else:
            flt = {k: v for k, v in q.items() if k.lstrip("><=!@%") in self._USER_FIELDS}
        rows = [u.row() for u in sorted(self.users.values(), key=lambda u: u.id)]
        rows = [r for r in rows if _match_filter(r, flt)]
        sort, order = q.get("SORT"), q.get("ORDER")
        if isinstance(sort, str) and sort:
            rows = self._sorted(rows, None, sort, order if isinstance(order, str) else "ASC")
        return self._page(rows, q.get("START"))

    _DEPARTMENT_FILTERS = ("ID", "NAME", "SORT", "PARENT", "UF_HEAD")

    def m_department_get(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        """api-reference/departments/department-get.md, exactly: ``sort`` (a field name) and
        ``order`` (ASC|DESC) strings; filters ``ID``, ``NAME`` (the full name), ``SORT``,
        ``PARENT``, ``UF_HEAD`` at the top level; ``START`` pages of 50 ((N-1)*50). No filter
        object and no ``>ID``: like the real portal, an unknown key is ignored."""
        flt = {k: p[k] for k in self._DEPARTMENT_FILTERS if k in p}
        rows = [d.row() for d in sorted(self.departments.values(), key=lambda d: d.id)]
        rows = [r for r in rows if _match_filter(r, flt)]
        sort, order = p.get("sort"), p.get("order")
        if isinstance(sort, str) and sort.upper() in self._DEPARTMENT_FILTERS:
            rows = self._sorted(rows, None, sort, order if isinstance(order, str) else "ASC")
        return self._page(rows, p.get("START"))

    # --- events ------------------------------------------------------------------------------------
    def m_event_bind(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/events/event-bind.md (a duplicate gives ERROR_HANDLER_ALREADY_EXIST)
        self._require_app(ctx, "event.bind")
        event, handler = (
            str(p.get("event") or p.get("EVENT") or "").upper(),
            p.get("handler") or p.get("HANDLER"),
        )
        if not event or not handler:
            raise FakeError("ERROR_REQUIRED_PARAMETERS_MISSING", "Required parameters missing", 400)
        offline = str(p.get("event_type") or p.get("EVENT_TYPE") or "online").lower() == "offline"
        for b in self.bindings:
            if b["event"] == event and b["handler"] == handler and b["offline"] == offline:
                raise FakeError("ERROR_HANDLER_ALREADY_EXIST", "Handler already binded", 400)
        self.bindings.append(
            {"event": event, "handler": handler, "auth_type": _int(p.get("auth_type"), 0), "offline": offline}
        )
        return True

    def m_event_get(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/events/event-get.md
        self._require_app(ctx, "event.get")
        return [
            {
                "event": b["event"],
                "handler": b["handler"] if not b["offline"] else "",
                "auth_type": str(b["auth_type"]),
                "offline": 1 if b["offline"] else 0,
            }
            for b in self.bindings
        ]

    def m_event_unbind(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/events/event-unbind.md
        self._require_app(ctx, "event.unbind")
        event = str(p.get("event") or p.get("EVENT") or "").upper()
        handler = p.get("handler") or p.get("HANDLER")
        before = len(self.bindings)
        self.bindings = [
            b
            for b in self.bindings
            if not (b["event"] == event and (handler in (None, "") or b["handler"] == handler))
        ]
        return {"count": before - len(self.bindings)}

    def m_event_offline_get(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/events/event-offline-get.md
        self._require_app(ctx, "event.offline.get")
        limit = _int(p.get("limit"), 50) or 50
        clear = str(p.get("clear", "1")) not in ("0", "false")
        picked = [e for e in self.offline_events if e["PROCESS_ID"] is None][:limit]
        process_id = secrets.token_hex(8)
        for e in picked:
            e["PROCESS_ID"] = process_id
        if clear:
            self.offline_events = [e for e in self.offline_events if e not in picked]
        return {
            "process_id": process_id,
            "events": [{k: v for k, v in e.items() if k != "PROCESS_ID"} for e in picked],
        }

    def m_event_offline_clear(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/events/event-offline-clear.md
        self._require_app(ctx, "event.offline.clear")
        pid = p.get("process_id")
        self.offline_events = [e for e in self.offline_events if e["PROCESS_ID"] != pid]
        return True

    # --- telephony / disk ---------------------------------------------------------------------------
    def m_voximplant_statistic_get(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/telephony/voximplant/voximplant-statistic-get.md (FILTER, SORT, ORDER, start)
        flt = self._filter_of(p)
        rows = []
        for call in sorted(self.calls_by_id.values(), key=lambda c: c.id):
            if _match_filter(call.row(), flt):
                call.polls += 1  # a poll that saw the row: the record may appear after N of them
                rows.append(call.row())
        rows = self._sorted(
            rows, None, p.get("SORT") or p.get("sort") or "ID", p.get("ORDER") or p.get("order")
        )
        return self._page(rows, p.get("start", p.get("START")))

    def m_disk_file_get(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/disk/file/disk-file-get.md (DOWNLOAD_URL: a signed /rest/download.json link)
        file_id = _int(p.get("id", p.get("ID")))
        meta = self.files.get(file_id or -1)
        if meta is None or file_id is None:
            raise FakeError("ERROR_NOT_FOUND", "Could not find entity with id", 404)
        return {
            "ID": str(file_id),
            "NAME": meta["name"],
            "TYPE": "file",
            "SIZE": str(len(meta["data"])),
            "STORAGE_ID": "1",
            "PARENT_ID": "1",
            # signed with the caller's token: "…/rest/download.json?auth=…&token=disk|…"
            "DOWNLOAD_URL": f"{self.url}/rest/download.json?"
            + urlencode({"auth": self._download_auth(ctx), "token": meta["token"]}),
            "DETAIL_URL": f"{self.url}/docs/file/{meta['name']}",
        }

    def _download_auth(self, ctx: Mapping[str, Any]) -> str:
        # a webhook call has no access token: its links carry one the portal makes up
        return str(ctx.get("token") or self._issue_tokens(self.webhook_user_id)[0])

    def m_telephony_call_attachtranscription(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/telephony/telephony-call-attach-transcription.md
        call_id = p.get("CALL_ID")
        if not call_id:  # the validation error the core answers as ERROR_CORE
            raise FakeError("ERROR_CORE", "CALL_ID should be set", 400)
        if call_id not in self.calls_by_id:
            raise FakeError("ERROR_NOT_FOUND", "Call is not found", 400)
        messages = p.get("MESSAGES")
        if not isinstance(messages, list) or not messages:
            raise FakeError("ERROR_ARGUMENT", "MESSAGES is empty", 400)
        for m in messages:
            if not isinstance(m, dict) or m.get("SIDE") not in ("User", "Client") or "MESSAGE" not in m:
                raise FakeError("ERROR_ARGUMENT", "Wrong message format", 400)
        file_id = next(self._ids)
        self.transcriptions.append({"CALL_ID": call_id, "MESSAGES": messages, "FILE_ID": file_id})
        return {"FILE_ID": file_id}

    # --- CRM ---------------------------------------------------------------------------------------
    def m_crm_activity_binding_list(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/crm/timeline/activities/binding/crm-activity-binding-list.md
        activity_id = _int(p.get("activityId"))
        for call in self.calls_by_id.values():
            if call.crm_activity_id is not None and call.crm_activity_id == activity_id:
                return [{"entityTypeId": t, "entityId": e} for t, e in call.bindings]
        if activity_id in self.activities:
            return []
        raise FakeError("NOT_FOUND", "Activity not found", 400)

    def m_crm_activity_get(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/crm/timeline/activities/activity-base/crm-activity-get.md
        act = self.activities.get(_int(p.get("id", p.get("ID"))) or -1)
        if act is None:
            raise FakeError("ERROR_NOT_FOUND", "Not found", 400)
        return act

    def m_crm_deal_get(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/crm/deals/crm-deal-get.md
        deal = self.deals.get(_int(p.get("id", p.get("ID"))) or -1)
        if deal is None:
            raise FakeError("ERROR_NOT_FOUND", "Not found", 400)
        return deal

    def m_crm_deal_list(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/crm/deals/crm-deal-list.md
        rows = [d for d in self.deals.values() if _match_filter(d, self._filter_of(p))]
        rows = self._sorted(sorted(rows, key=lambda d: int(d["ID"])), p.get("order"))
        return self._page(rows, p.get("start"))

    def m_crm_timeline_comment_add(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/crm/timeline/comments/crm-timeline-comment-add.md (ENTITY_TYPE lowercase)
        fields = p.get("fields") or p.get("FIELDS") or {}
        etype, eid, text = fields.get("ENTITY_TYPE"), _int(fields.get("ENTITY_ID")), fields.get("COMMENT")
        if etype not in ("deal", "lead", "contact", "company") or not eid or not text:
            raise FakeError(
                "ERROR_ARGUMENT", "ENTITY_ID, ENTITY_TYPE (lowercase) and COMMENT are required", 400
            )
        if etype == "deal" and eid not in self.deals:
            raise FakeError("NOT_FOUND", "Deal not found", 400)
        comment_id = next(self._ids)
        self.comments.append(
            {
                "ID": comment_id,
                "ENTITY_TYPE": etype,
                "ENTITY_ID": eid,
                "COMMENT": text,
                "AUTHOR_ID": ctx["user_id"],
                "CREATED": datetime.now(MSK).isoformat(),
            }
        )
        return comment_id

    def m_crm_timeline_comment_list(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        """api-reference/crm/timeline/comments/crm-timeline-comment-list.md: ``filter``
        (ENTITY_ID and ENTITY_TYPE required), ``order`` object on ID/CREATED/AUTHOR_ID, ``start``
        pages of 50."""
        flt = self._filter_of(p)
        if not flt.get("ENTITY_ID") or not flt.get("ENTITY_TYPE"):
            raise FakeError("ERROR_CORE", "ENTITY_ID and ENTITY_TYPE are required in filter", 400)
        rows = [{**c, "ID": str(c["ID"]), "ENTITY_ID": str(c["ENTITY_ID"])} for c in self.comments]
        rows = [r for r in rows if _match_filter(r, flt)]
        order = p.get("order")
        if isinstance(order, dict):
            order = {k: v for k, v in order.items() if str(k).upper() in ("ID", "CREATED", "AUTHOR_ID")}
        return self._page(self._sorted(rows, order), p.get("start"))

    def m_crm_activity_layout_blocks_set(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/crm/timeline/activities/layout-blocks/crm-activity-layout-blocks-set.md:
        # app context only, at most 20 blocks
        self._require_app(ctx, "crm.activity.layout.blocks.set")
        key = (_int(p.get("entityTypeId")), _int(p.get("entityId")), _int(p.get("activityId")))
        layout = p.get("layout")
        if None in key or not isinstance(layout, dict):
            raise FakeError(
                "ERROR_ARGUMENT", "entityTypeId, entityId, activityId and layout are required", 400
            )
        if key[2] not in self.activities:
            raise FakeError("NOT_FOUND", "Activity not found", 400)
        blocks = layout.get("blocks") or {}
        if len(blocks) > 20:
            raise FakeError("ERROR_ARGUMENT", "Too many blocks (max 20)", 400)
        self.layout_blocks[key] = layout  # type: ignore[index]
        return {"success": True}

    # --- im ----------------------------------------------------------------------------------------
    def m_im_notify_system_add(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/chats/notifications/im-notify-system-add.md
        nid = next(self._ids)
        self.notifications.append({"ID": nid, "USER_ID": _int(p.get("USER_ID")), "MESSAGE": p.get("MESSAGE")})
        return nid

    def m_im_message_add(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/chats/messages/im-message-add.md
        mid = next(self._ids)
        self.im_messages.append({"ID": mid, "DIALOG_ID": p.get("DIALOG_ID"), "MESSAGE": p.get("MESSAGE")})
        return mid

    # --- imbot.v2 ----------------------------------------------------------------------------------
    def _bot(self, p: Mapping[str, Any]) -> FakeBot:
        bot_id = _int(p.get("botId"))
        if bot_id is None:
            raise FakeError("BOT_ID_REQUIRED", "Bot ID is required", 400)
        bot = self.bots.get(bot_id)
        if bot is None:
            raise FakeError("BOT_NOT_FOUND", "Bot not found", 400)
        return bot

    def m_imbot_v2_bot_register(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/chat-bots/chat-bots-v2/imbot.v2/bots/bot-register.md
        fields = p.get("fields") or {}
        code = fields.get("code")
        if not code:
            raise FakeError("BOT_CODE_REQUIRED", "Bot code is required", 400)
        for bot in self.bots.values():
            if bot.code == code:  # bot-register.md: "the existing bot without updating the data"
                return {"bot": bot.info(), "users": [self._bot_user(bot)]}
        props = fields.get("properties") or {}
        if not props.get("name"):
            raise FakeError("BOT_PROPERTIES_REQUIRED", "Bot properties are required", 400)
        mode = fields.get("eventMode", "fetch")
        if mode not in ("fetch", "webhook"):
            raise FakeError("BOT_INVALID_EVENT_MODE", "Invalid event mode", 400)
        if mode == "webhook" and not fields.get("webhookUrl"):
            raise FakeError("BOT_WEBHOOK_URL_REQUIRED", "Webhook URL is required", 400)
        bot = FakeBot(next(self._ids), code, props["name"], mode, fields.get("webhookUrl"), fields)
        self.bots[bot.id] = bot
        return {"bot": bot.info(), "users": [self._bot_user(bot)]}

    def m_imbot_v2_bot_update(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        """bot-update.md: ``botId`` and ``fields`` (properties, eventMode, webhookUrl...); a new
        webhookUrl or eventMode moves the bot's event subscriptions."""
        bot = self._bot(p)
        fields = p.get("fields")
        if not isinstance(fields, dict) or not fields:
            raise FakeError("BOT_FIELDS_REQUIRED", "Fields are required", 400)
        mode = fields.get("eventMode", bot.event_mode)
        if mode not in ("fetch", "webhook"):
            raise FakeError("BOT_INVALID_EVENT_MODE", "Invalid event mode", 400)
        url = fields.get("webhookUrl", bot.webhook_url)
        if mode == "webhook" and not url:
            raise FakeError("BOT_WEBHOOK_URL_REQUIRED", "Webhook URL is required", 400)
        props = fields.get("properties")
        if isinstance(props, dict):
            bot.fields["properties"] = {**(bot.fields.get("properties") or {}), **props}
            bot.name = str(props.get("name") or bot.name)
        bot.event_mode, bot.webhook_url = mode, url if mode == "webhook" else None
        return {"bot": bot.info(), "users": [self._bot_user(bot)]}

    @staticmethod
    def _bot_user(bot: FakeBot) -> dict[str, Any]:
        return {
            "id": bot.id,
            "active": True,
            "name": bot.name,
            "bot": True,
            "type": "bot",
            "workPosition": (bot.fields.get("properties") or {}).get("workPosition", ""),
        }

    def m_imbot_v2_bot_list(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/chat-bots/chat-bots-v2/imbot.v2/bots/bot-list.md
        return {"bots": [b.info() for b in self.bots.values()]}

    def m_imbot_v2_bot_unregister(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/chat-bots/chat-bots-v2/imbot.v2/bots/bot-unregister.md
        bot = self._bot(p)
        del self.bots[bot.id]
        return True

    def m_imbot_v2_command_register(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/chat-bots/chat-bots-v2/imbot.v2/commands/command-register.md
        bot = self._bot(p)
        fields = p.get("fields") or p
        command = str(fields.get("command") or "").lstrip("/")
        if not command:
            raise FakeError("COMMAND_REQUIRED", "Command is required", 400)
        if command not in bot.commands:
            bot.commands[command] = next(self._ids)
        return {"command": {"id": bot.commands[command], "command": command, "botId": bot.id}}

    def m_imbot_v2_event_get(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/chat-bots/chat-bots-v2/imbot.v2/events/event-get.md (offset confirms earlier events)
        bot = self._bot(p)
        offset = _int(p.get("offset"))
        if offset is not None:  # confirms every event with id < offset
            bot.queue = [e for e in bot.queue if e["eventId"] >= offset]
        limit = max(1, min(1000, _int(p.get("limit"), 100) or 100))
        events = bot.queue[:limit]
        next_offset = events[-1]["eventId"] + 1 if events else (offset or 0)
        return {"events": events, "nextOffset": next_offset, "hasMore": len(bot.queue) > len(events)}

    def m_imbot_v2_chat_message_send(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/chat-bots/chat-bots-v2/imbot.v2/messages/chat-message-send.md:
        # at most 20,000 characters
        bot = self._bot(p)
        dialog_id = p.get("dialogId")
        fields = p.get("fields") or {}
        text = fields.get("message") or ""
        if not dialog_id:
            raise FakeError("DIALOG_ID_REQUIRED", "Dialog ID is required", 400)
        if not text and not fields.get("attach"):
            raise FakeError("EMPTY_MESSAGE", "Message is empty", 400)
        if len(text) > MAX_BOT_MESSAGE:
            raise FakeError("MESSAGE_TOO_LONG", f"Message is longer than {MAX_BOT_MESSAGE} characters", 400)
        mid = next(self._ids)
        self.bot_messages.append(
            {
                "id": mid,
                "botId": bot.id,
                "dialogId": str(dialog_id),
                "message": text,
                "keyboard": fields.get("keyboard"),
                "attach": fields.get("attach"),
            }
        )
        return {"id": mid, "uuidMap": {}}

    def m_imbot_v2_chat_inputaction_notify(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/chat-bots/chat-bots-v2/imbot.v2/ui/chat-input-action-notify.md
        bot = self._bot(p)
        self.input_actions.append({"botId": bot.id, "dialogId": p.get("dialogId")})
        return True

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

    # --- outbound: install, events, bot events --------------------------------------------------------
    async def _post_form(
        self, url: str, data: Mapping[str, Any], *, json_body: bool = False
    ) -> dict[str, Any]:
        assert self._session is not None, "start() the portal first"
        if json_body:
            kwargs: dict[str, Any] = {"json": data}
        else:
            kwargs = {
                "data": php_form(data),
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            }
        async with self._session.post(url, timeout=aiohttp.ClientTimeout(total=30), **kwargs) as resp:
            text = await resp.text()
            info = {"url": url, "event": data.get("event"), "status": resp.status, "text": text}
        self.deliveries.append(info)
        return info

    async def install(self, app_install_url: str, *, auth: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The "API only" install (settings/app-installation/local-apps/installation-callback.md,
        api-reference/common/events/on-app-install.md): one form-encoded ONAPPINSTALL POST at the
        initial installation path; the app counts as installed at once. ``auth`` overrides fields
        of the auth block (a forger's request). Returns {status, text}."""
        block = self._auth_block()
        block.pop("user_id", None)
        block.pop("expires", None)
        if auth is None:
            self.access_token, self.refresh_token = block["access_token"], block["refresh_token"]
            self.app_installed = True  # installation-finish.md: no installFinish for API-only apps
        else:
            block.update(auth)
        data = {
            "event": "ONAPPINSTALL",
            "data": {"VERSION": "1", "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": "ru"},
            "ts": int(time.time()),
            "auth": block,
        }
        return await self._post_form(app_install_url, data)

    # what the install page must do in the browser (installation-finish.md, bx24-install-finish.md)
    _JS_LIBRARY = re.compile(r"<script[^>]+src=[\"'](?:https:)?//api\.bitrix24\.com/api/v1/?[\"']")
    _INSTALL_FINISH = re.compile(r"BX24\.installFinish\(\s*\)")

    async def install_in_frame(
        self,
        install_path: str,
        *,
        user_id: int = 1,
        form: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An app with an interface (installation-finish.md, local-apps/installation-master.md):
        the admin opens the app and the portal loads the "initial installation path" in a frame
        with a POST like any app page (settings/oauth/simple-way.md): DOMAIN, PROTOCOL, LANG,
        APP_SID in the query; AUTH_ID, AUTH_EXPIRES, REFRESH_ID, SERVER_ENDPOINT,
        APPLICATION_TOKEN, APPLICATION_SCOPE, member_id, status, PLACEMENT in the body.

        Then the browser runs the page: when it loads the BX24 library and calls
        ``BX24.installFinish()`` the app becomes installed and events start to flow. ``form`` and
        ``query`` override fields (a forger's request). Returns {status, text, finished}."""
        assert self._session is not None, "start() the portal first"
        access, refresh = self._issue_tokens(user_id)
        body = {
            "AUTH_ID": access,
            "AUTH_EXPIRES": "3600",
            "REFRESH_ID": refresh,
            "SERVER_ENDPOINT": self.server_endpoint,
            "APPLICATION_TOKEN": self.application_token,
            "APPLICATION_SCOPE": self.scope,
            "member_id": self.member_id,
            "status": "L",
            "PLACEMENT": "DEFAULT",
            **(form or {}),
        }
        params = {
            "DOMAIN": self.domain,
            "PROTOCOL": "1" if self.url.startswith("https") else "0",
            "LANG": "ru",
            "APP_SID": secrets.token_hex(16),
            **(query or {}),
        }
        if form is None and query is None:
            self.access_token, self.refresh_token = access, refresh
        async with self._session.post(
            install_path, params=params, data=body, timeout=aiohttp.ClientTimeout(total=60)
        ) as resp:
            text = await resp.text()
            info: dict[str, Any] = {"url": install_path, "status": resp.status, "text": text}
        finished = (
            resp.status == 200
            and "text/html" in resp.headers.get("Content-Type", "")
            and bool(self._JS_LIBRARY.search(text))
            and bool(self._INSTALL_FINISH.search(text))
        )
        if finished and form is None and query is None:
            self.install_finish_calls += 1
            self.app_installed = True
        info["finished"] = finished
        self.deliveries.append({**info, "event": "INSTALL_PAGE"})
        return info

    async def uninstall(self, url: str, clean: bool = False) -> dict[str, Any]:
        data = {
            "event": "ONAPPUNINSTALL",
            "data": {"LANGUAGE_ID": "ru", "CLEAN": 1 if clean else 0},
            "ts": int(time.time()),
            "auth": self._auth_block(with_tokens=False),
        }
        return await self._post_form(url, data)

    async def send_event(
        self,
        handler_url: str,
        event: str,
        data: Mapping[str, Any],
        *,
        application_token: str | None = None,
        json_body: bool = False,
        handler_id: int | None = None,
        user_id: int = 1,
    ) -> dict[str, Any]:
        auth = self._auth_block(user_id=user_id)
        if application_token is not None:
            auth["application_token"] = application_token
        payload = {
            "event": event.upper(),
            "event_handler_id": handler_id or next(self._ids),
            "data": dict(data),
            "ts": int(time.time()),
            "auth": auth,
        }
        return await self._post_form(handler_url, payload, json_body=json_body)

    async def send_bound_event(self, event: str, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Deliver to every online handler bound with event.bind; queue it for offline bindings.
        Nothing is sent while the app is not installed (installation-finish.md: "Events will not
        be sent to the handler, even after a successful event.bind")."""
        if not self.app_installed:
            self.withheld_events.append({"event": event.upper(), "data": dict(data)})
            return []
        out = []
        for b in list(self.bindings):
            if b["event"] != event.upper():
                continue
            if b["offline"]:
                self.offline_events.append(
                    {
                        "ID": next(self._event_seq),
                        "EVENT_NAME": event.upper(),
                        "EVENT_DATA": dict(data),
                        "EVENT_ADDITIONAL": {},
                        "MESSAGE_ID": secrets.token_hex(8),
                        "PROCESS_ID": None,
                    }
                )
                continue
            out.append(await self.send_event(b["handler"], event, data))
        return out

    def _find_bot(self, bot: str | int) -> FakeBot:
        for candidate in self.bots.values():
            if candidate.id == _int(bot) or candidate.code == bot:
                return candidate
        raise KeyError(f"no bot {bot!r} registered")

    def _chat(self, user_id: int, dialog_id: str | None) -> dict[str, Any]:
        if dialog_id and dialog_id.startswith("chat"):
            return {"id": int(dialog_id[4:]), "dialogId": dialog_id, "type": "chat", "name": "Чат"}
        return {"id": 100 + user_id, "dialogId": str(user_id), "type": "private", "name": ""}

    def _user_obj(self, user_id: int) -> dict[str, Any]:
        u = self.users.get(user_id) or FakeUser(user_id, f"User{user_id}")
        return {
            "id": u.id,
            "active": True,
            "name": f"{u.name} {u.last_name}".strip(),
            "firstName": u.name,
            "lastName": u.last_name,
            "bot": False,
            "type": "employee",
            "departments": u.department_ids,
        }

    async def _bot_event(self, bot: FakeBot, event: str, data: dict[str, Any]) -> dict[str, Any] | None:
        if bot.event_mode == "webhook" and bot.webhook_url:
            if not self.app_installed:  # installation-finish.md: no events before installFinish
                self.withheld_events.append({"event": event, "data": data})
                return None
            bot_block = {"id": bot.id, "code": bot.code, "auth": self._auth_block()}
            payload = {
                "event": event,
                "data": {"bot": bot_block, **data},
                "ts": int(time.time()),
                "auth": {
                    "domain": self.domain,
                    "member_id": self.member_id,
                    "application_token": self.application_token,
                },
            }
            return await self._post_form(bot.webhook_url, payload)
        bot.queue.append(
            {
                "eventId": next(self._event_seq),
                "type": event,
                "date": datetime.now(MSK).isoformat(timespec="seconds"),
                "data": {"bot": bot.info(), **data},
            }
        )
        return None

    async def bot_user_says(
        self, bot: str | int, user_id: int, text: str, dialog_id: str | None = None
    ) -> dict[str, Any] | None:
        """A user writes to the bot: webhook mode → POST ONIMBOTV2MESSAGEADD; fetch mode → queued."""
        b = self._find_bot(bot)
        chat = self._chat(user_id, dialog_id)
        message = {
            "id": next(self._ids),
            "chatId": chat["id"],
            "authorId": user_id,
            "text": text,
            "date": datetime.now(MSK).isoformat(timespec="seconds"),
            "isSystem": False,
            "params": {},
        }
        return await self._bot_event(
            b,
            "ONIMBOTV2MESSAGEADD",
            {"message": message, "chat": chat, "user": self._user_obj(user_id), "language": "ru"},
        )

    async def bot_command(
        self, bot: str | int, user_id: int, command: str, params: str = "", dialog_id: str | None = None
    ) -> dict[str, Any] | None:
        b = self._find_bot(bot)
        name = command.lstrip("/")
        chat = self._chat(user_id, dialog_id)
        message = {
            "id": next(self._ids),
            "chatId": chat["id"],
            "authorId": user_id,
            "text": f"/{name} {params}".strip(),
            "isSystem": False,
            "params": {},
        }
        return await self._bot_event(
            b,
            "ONIMBOTV2COMMANDADD",
            {
                "command": {
                    "id": b.commands.get(name, 0),
                    "command": f"/{name}",
                    "params": params,
                    "context": "textarea",
                },
                "message": message,
                "chat": chat,
                "user": self._user_obj(user_id),
                "language": "ru",
            },
        )

    async def bot_join(
        self, bot: str | int, user_id: int, dialog_id: str | None = None
    ) -> dict[str, Any] | None:
        b = self._find_bot(bot)
        chat = self._chat(user_id, dialog_id)
        return await self._bot_event(
            b,
            "ONIMBOTV2JOINCHAT",
            {"dialogId": chat["dialogId"], "chat": chat, "user": self._user_obj(user_id), "language": "ru"},
        )

    # --- bot helpers added for tests/bot (chat bot helper) ------------------------------------------
    async def bot_delete(self, bot: str | int) -> dict[str, Any] | None:
        """An admin removes the bot: ONIMBOTV2DELETE is delivered (webhook) or queued (fetch)."""
        b = self._find_bot(bot)
        return await self._bot_event(b, "ONIMBOTV2DELETE", {"language": "ru"})


@dataclass
class _Page:
    items: list[dict[str, Any]]
    extra: dict[str, Any]


__all__ = ["FakeCall", "FakeError", "FakePortal", "php_form"]
