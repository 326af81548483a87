"""Is an install request really from the portal it names? Asked of the OAuth server.

Anyone can POST to the install path, in either form (the frame install of an app with an
interface, ``settings/oauth/simple-way.md``; the "API only" ``ONAPPINSTALL`` callback,
``api-reference/common/events/on-app-install.md``). The OAuth server is "the only trusted source
of information about the application" (``settings/oauth/index.md``), so the refresh token in the
request is renewed there (``settings/oauth/auto-renewal.md``) with this app's client id and
secret, at the address from configuration (never one taken from the request). The answer names
the portal the token belongs to: its ``member_id`` and ``client_endpoint`` must be the ones the
request claims, and its ``server_endpoint`` the claimed one when the request gives one. A forged
request (made-up tokens, or a forger's own tokens with a victim's member_id or endpoints) fails
here, before anything is stored.

The renewal spends the request's refresh token (single use): the verified answer's fresh pair is
what gets stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from .auth import request_renewal
from .errors import error_from_response

log = logging.getLogger(__name__)


class InstallRefused(Exception):
    """The install could not be verified: nothing was stored. ``status`` is the HTTP answer
    (401: the OAuth server does not vouch for the tokens; 403: they belong to another portal or
    the app is not configured to check; 503: the OAuth server could not be asked)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class InstallClaim:
    """What an install request says about itself, in either form."""

    member_id: str
    domain: str
    client_endpoint: str
    refresh_token: str = field(repr=False)
    application_token: str = field(repr=False)
    server_endpoint: str = ""
    scope: str = ""
    form: str = "api"  # "api" (ONAPPINSTALL) or "frame" (the install page)

    @classmethod
    def from_onappinstall(cls, auth: Mapping[str, Any]) -> InstallClaim:
        """``auth[...]`` of ONAPPINSTALL; ValueError naming what is missing."""
        need = ("member_id", "domain", "refresh_token", "application_token")
        missing = [k for k in need if not str(auth.get(k) or "").strip()]
        if missing:
            raise ValueError("install without auth[" + "], auth[".join(missing) + "]")
        domain = str(auth["domain"]).strip()
        return cls(
            member_id=str(auth["member_id"]).strip(),
            domain=domain,
            client_endpoint=str(auth.get("client_endpoint") or f"https://{domain}/rest/").strip(),
            refresh_token=str(auth["refresh_token"]).strip(),
            application_token=str(auth["application_token"]).strip(),
            server_endpoint=str(auth.get("server_endpoint") or "").strip(),
            scope=str(auth.get("scope") or ""),
            form="api",
        )

    @classmethod
    def from_frame(cls, query: Mapping[str, str], form: Mapping[str, str]) -> InstallClaim:
        """The install page's POST (simple-way.md): DOMAIN and PROTOCOL in the query, tokens and
        member_id in the body (either place is read for each, as some proxies move them)."""

        def get(name: str) -> str:
            return str(form.get(name) or query.get(name) or "").strip()

        need = ("DOMAIN", "member_id", "REFRESH_ID", "APPLICATION_TOKEN")
        missing = [k for k in need if not get(k)]
        if missing:
            raise ValueError("install page opened without " + ", ".join(missing))
        domain = get("DOMAIN")
        scheme = "http" if get("PROTOCOL") == "0" else "https"  # 0 http, 1 https
        return cls(
            member_id=get("member_id"),
            domain=domain,
            client_endpoint=f"{scheme}://{domain}/rest/",
            refresh_token=get("REFRESH_ID"),
            application_token=get("APPLICATION_TOKEN"),
            server_endpoint=get("SERVER_ENDPOINT"),
            scope=get("APPLICATION_SCOPE"),
            form="frame",
        )


@dataclass(frozen=True)
class VerifiedInstall:
    """The portal as the OAuth server describes it, with the fresh token pair."""

    member_id: str
    domain: str
    client_endpoint: str
    server_endpoint: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: float
    application_token: str = field(repr=False)
    scope: str


def _endpoint(value: str) -> str:
    """Endpoints compared by scheme, host and path; case of the host and the final slash aside."""
    parts = urlsplit(value.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


async def verify_install(
    session: aiohttp.ClientSession,
    claim: InstallClaim,
    *,
    oauth_url: str,
    client_id: str,
    client_secret: str,
    timeout_s: float = 15.0,
    user_agent: str = "callcoach",
) -> VerifiedInstall:
    """Renew ``claim.refresh_token`` at ``oauth_url`` and check the answer against the claim."""
    if not client_id or not client_secret:
        raise InstallRefused(
            403,
            "the app cannot verify installs: set CALLCOACH_CLIENT_ID and CALLCOACH_CLIENT_SECRET "
            "(the local application's form shows both)",
        )
    if urlsplit(claim.client_endpoint).netloc.lower() != claim.domain.lower():
        raise InstallRefused(403, "the install request's domain and client_endpoint name different portals")
    try:
        status, body = await request_renewal(
            session,
            oauth_url,
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=claim.refresh_token,
            client_timeout=aiohttp.ClientTimeout(total=timeout_s),
            user_agent=user_agent,
        )
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise InstallRefused(
            503, f"the OAuth server could not be asked ({type(exc).__name__}); nothing installed, try again"
        ) from None
    if not isinstance(body, dict):
        raise InstallRefused(503, f"the OAuth server answered {status} without JSON; nothing was installed")
    if "error" in body or status != 200 or not body.get("access_token"):
        err = error_from_response(status, body)
        log.warning("install refused for %s: the OAuth server said %s", claim.domain, err.code)
        raise InstallRefused(401, f"the OAuth server refuses the install's refresh token ({err.code})")
    answer_member = str(body.get("member_id") or "")
    answer_client = str(body.get("client_endpoint") or "")
    answer_server = str(body.get("server_endpoint") or "")
    if answer_member != claim.member_id:
        raise InstallRefused(403, "the tokens belong to another portal (member_id differs)")
    if _endpoint(answer_client) != _endpoint(claim.client_endpoint):
        raise InstallRefused(403, "the tokens belong to another portal (client_endpoint differs)")
    claimed_server = claim.server_endpoint
    if claimed_server and answer_server and _endpoint(answer_server) != _endpoint(claimed_server):
        raise InstallRefused(403, "the install names another authorization server (server_endpoint differs)")
    # auto-renewal.md: the answer's "domain" is the authorization server's (oauth.bitrix.info);
    # older answers carried the portal's. Either is accepted; the portal is client_endpoint's host.
    answer_domain = str(body.get("domain") or "").lower()
    allowed_domains = {
        claim.domain.lower(),
        urlsplit(oauth_url).netloc.lower(),
        urlsplit(answer_server).netloc.lower(),
    }
    if answer_domain and answer_domain not in allowed_domains:
        raise InstallRefused(403, "the OAuth server's answer names another domain")
    expires = body.get("expires")
    try:
        expires_at = float(expires) if expires else time.time() + float(body.get("expires_in") or 3600)
    except (TypeError, ValueError):
        expires_at = time.time() + 3600
    return VerifiedInstall(
        member_id=answer_member,
        domain=urlsplit(answer_client).netloc,
        client_endpoint=answer_client if answer_client.endswith("/") else answer_client + "/",
        server_endpoint=answer_server or claim.server_endpoint,
        access_token=str(body["access_token"]),
        refresh_token=str(body.get("refresh_token") or ""),
        expires_at=expires_at,
        application_token=claim.application_token,
        scope=str(body.get("scope") or claim.scope),
    )
