"""The fake portal itself: its state, lifecycle, controls and scenario helpers; each area of the
REST API is a part of its own (this package's other modules)."""

from __future__ import annotations

import itertools
import secrets
import time
from collections import deque
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from callcoach.b24.auth import PortalCredentials
from tests.fakes.faults import Faults
from tests.fakes.local_http import serve_locally
from tests.fakes.portal.ai import AiArea
from tests.fakes.portal.bot import BotArea
from tests.fakes.portal.models import MSK, FakeBot, FakeCall, FakeDepartment, FakeUser, _Failure
from tests.fakes.portal.oauth_events import OAuthEvents
from tests.fakes.portal.rest import RestCore
from tests.fakes.portal.telephony_crm import TelephonyCrm


class FakePortal(RestCore, OAuthEvents, TelephonyCrm, BotArea, AiArea):
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
