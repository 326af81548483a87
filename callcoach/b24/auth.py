"""Portal credentials and the OAuth refresh (single flight).

Documented Bitrix24 logic: call with the stored access token; on 401 ``expired_token`` refresh once,
store the new pair, retry. Many coroutines may hit ``expired_token`` at the same moment; they all
wait on one lock, and whoever gets it second sees that the token already changed and does nothing,
so the portal sees exactly one refresh (the old refresh token is single use).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from .errors import B24Error, B24TransportError, InvalidGrant, error_from_response

log = logging.getLogger(__name__)

DEFAULT_OAUTH_URL = "https://oauth.bitrix.info/oauth/token/"


async def request_renewal(
    session: aiohttp.ClientSession,
    oauth_url: str,
    *,
    client_id: str,
    client_secret: str,
    refresh_token: str,
    client_timeout: aiohttp.ClientTimeout,
    user_agent: str,
) -> tuple[int, Any]:
    """One refresh at the OAuth server (``settings/oauth/auto-renewal.md``): the HTTP status and
    the JSON body (None when the answer is not JSON). Transport errors propagate: the token
    refresher and the install check each turn them into their own error."""
    params = {
        "grant_type": "refresh_token",
        "client_id": client_id,
        "client_secret": client_secret,
        "refresh_token": refresh_token,
    }
    headers = {"User-Agent": user_agent, "Accept": "application/json"}
    async with session.get(oauth_url, params=params, timeout=client_timeout, headers=headers) as resp:
        try:
            body: Any = await resp.json(content_type=None)
        except ValueError:
            body = None
        return resp.status, body


@dataclass(frozen=True)
class PortalCredentials:
    """What ONAPPINSTALL gives us, per portal (``member_id`` is the portal's identity)."""

    member_id: str
    domain: str
    client_endpoint: str
    server_endpoint: str = "https://oauth.bitrix.info/rest/"
    access_token: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    expires_at: float = 0.0
    application_token: str = field(default="", repr=False)
    scope: str = ""


class TokenSink(Protocol):
    """Persists refreshed credentials (the storage layer implements it)."""

    async def __call__(self, creds: PortalCredentials) -> None: ...


class TokenSource(Protocol):
    """Reads the newest stored credentials of a portal, or None (the storage layer implements it).
    Another process (a CLI run beside the server) may have refreshed them: Bitrix24 then no
    longer accepts the refresh token this process holds."""

    async def __call__(self, member_id: str) -> PortalCredentials | None: ...


def derive_oauth_url(server_endpoint: str) -> str:
    """``https://oauth.bitrix.info/rest/`` → ``https://oauth.bitrix.info/oauth/token/``."""
    endpoint = (server_endpoint or "").strip()
    if endpoint.rstrip("/").endswith("/rest"):
        return endpoint.rstrip("/")[: -len("/rest")] + "/oauth/token/"
    return DEFAULT_OAUTH_URL


class TokenRefresher:
    """Holds the current credentials of one portal and refreshes them at most once per expiry."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        creds: PortalCredentials,
        *,
        client_id: str,
        client_secret: str,
        oauth_url: str | None = None,
        on_tokens: TokenSink | None = None,
        stored: TokenSource | None = None,
        timeout_s: float = 30.0,
        user_agent: str = "callcoach/0.1",
    ) -> None:
        self._session = session
        self.creds = creds
        self._client_id = client_id
        self._client_secret = client_secret
        self.oauth_url = oauth_url or derive_oauth_url(creds.server_endpoint)
        self._on_tokens = on_tokens
        self._stored = stored
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._user_agent = user_agent
        self._lock = asyncio.Lock()
        self.refresh_count = 0

    def __repr__(self) -> str:
        return f"TokenRefresher(member_id={self.creds.member_id!r}, oauth_url={self.oauth_url!r})"

    async def refresh(self, failed_access_token: str) -> PortalCredentials:
        """Refresh unless someone already replaced ``failed_access_token``; return current creds."""
        async with self._lock:
            if self.creds.access_token != failed_access_token:
                return self.creds
            if self._stored is not None:
                newer = await self._stored(self.creds.member_id)
                if newer is not None and newer.access_token not in ("", failed_access_token):
                    self.creds = newer  # refreshed by another process meanwhile: use its tokens
                    return self.creds
            self.creds = await self._request_new_tokens()
            self.refresh_count += 1
            if self._on_tokens is not None:
                await self._on_tokens(self.creds)
            return self.creds

    async def _request_new_tokens(self) -> PortalCredentials:
        started = time.monotonic()
        try:
            status, body = await request_renewal(
                self._session,
                self.oauth_url,
                client_id=self._client_id,
                client_secret=self._client_secret,
                refresh_token=self.creds.refresh_token,
                client_timeout=self._timeout,
                user_agent=self._user_agent,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise B24TransportError("TRANSPORT", f"token refresh failed: {type(exc).__name__}") from None
        log.info(
            "b24 token refresh member=%s status=%s in %.3fs",
            self.creds.member_id,
            status,
            time.monotonic() - started,
        )
        if not isinstance(body, dict):
            raise B24TransportError("BAD_RESPONSE", f"token endpoint answered {status} without JSON", status)
        if "error" in body:
            err = error_from_response(status, body)
            if err.code in ("invalid_grant", "invalid_client", "wrong_client"):
                raise InvalidGrant(err.code, err.description, status)
            raise err
        if status != 200 or not body.get("access_token"):
            raise B24Error("BAD_TOKEN_RESPONSE", f"token endpoint answered {status}", status)
        expires = body.get("expires")
        try:
            expires_at = float(expires) if expires else time.time() + float(body.get("expires_in") or 3600)
        except (TypeError, ValueError):
            expires_at = time.time() + 3600
        return dataclasses.replace(
            self.creds,
            access_token=str(body["access_token"]),
            refresh_token=str(body.get("refresh_token") or self.creds.refresh_token),
            expires_at=expires_at,
            client_endpoint=str(body.get("client_endpoint") or self.creds.client_endpoint),
            server_endpoint=str(body.get("server_endpoint") or self.creds.server_endpoint),
            scope=str(body.get("scope") or self.creds.scope),
        )
