"""One B24Client per portal, sharing one leaky bucket per portal, with refreshed tokens written
back to the database; and short-lived clients that act with a user's own token."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from callcoach import __version__
from callcoach.b24.auth import PortalCredentials
from callcoach.b24.client import B24Client
from callcoach.b24.throttle import LeakyBucket, Throttle
from callcoach.config import Settings
from callcoach.metrics import Metrics
from callcoach.storage import PortalRepo
from callcoach.storage.portals import Portal

USER_TIMEOUT_S = 10.0  # per request made for a person waiting on a page


def credentials_of(portal: Portal) -> PortalCredentials:
    return PortalCredentials(
        member_id=portal.member_id,
        domain=portal.domain,
        client_endpoint=portal.client_endpoint,
        server_endpoint=portal.server_endpoint,
        access_token=portal.access_token,
        refresh_token=portal.refresh_token,
        expires_at=portal.expires_at,
        application_token=portal.application_token,
        scope=portal.scope,
    )


class PortalClients:
    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession,
        portals: PortalRepo,
        metrics: Metrics | None = None,
        *,
        bucket_factory: Callable[[str], Throttle] | None = None,
    ) -> None:
        self.settings = settings
        self.session = session
        self.portals = portals
        self.metrics = metrics
        self._clients: dict[str, B24Client] = {}
        self._buckets: dict[str, Throttle] = {}
        # in-process by default; scaled out, one bucket in Redis shared by every process
        self._new_bucket = bucket_factory or (
            lambda _key: LeakyBucket(settings.rest_rate, settings.rest_burst)
        )
        self.user_agent = f"{settings.app_name}/{__version__}"

    def _bucket(self, key: str) -> Throttle:
        # Bitrix24 counts requests per portal, so every client of one portal drains one bucket.
        if key not in self._buckets:
            self._buckets[key] = self._new_bucket(key)
        return self._buckets[key]

    async def _save_tokens(self, creds: PortalCredentials) -> None:
        await self.portals.save_tokens(
            creds.member_id, creds.access_token, creds.refresh_token, creds.expires_at
        )

    async def _stored_tokens(self, member_id: str) -> PortalCredentials | None:
        portal = await self.portals.by_member(member_id)
        return credentials_of(portal) if portal is not None else None

    def for_portal(self, portal: Portal) -> B24Client:
        if portal.mode == "webhook":
            return self.for_webhook(portal.client_endpoint)
        client = self._clients.get(portal.member_id)
        if client is None:
            client = B24Client.for_portal(
                self.session,
                credentials_of(portal),
                client_id=self.settings.client_id,
                client_secret=self.settings.client_secret.get_secret_value(),
                on_tokens=self._save_tokens,
                stored=self._stored_tokens,
                oauth_url=str(self.settings.oauth_url) if self.settings.oauth_url else None,
                throttle=self._bucket(portal.member_id),
                timeout_s=self.settings.rest_timeout_s,
                max_retries=self.settings.rest_max_retries,
                user_agent=self.user_agent,
                on_request=self.metrics.on_rest if self.metrics else None,
            )
            self._clients[portal.member_id] = client
        return client

    def for_webhook(self, url: str) -> B24Client:
        key = "webhook:" + url
        if key not in self._clients:
            self._clients[key] = B24Client.for_webhook(
                self.session,
                url,
                throttle=self._bucket(key),
                timeout_s=self.settings.rest_timeout_s,
                max_retries=self.settings.rest_max_retries,
                user_agent=self.user_agent,
                on_request=self.metrics.on_rest if self.metrics else None,
            )
        return self._clients[key]

    def forget(self, member_id: str) -> None:
        """Drop the cached client (a re-install brings new tokens it must not shadow)."""
        self._clients.pop(member_id, None)

    def for_user(self, portal: Portal, access_token: str) -> B24Client:
        """A client that calls as one user, with his own token (the ``AUTH_ID`` the portal gives the
        app's page): on the portal's bucket and metrics, never refreshed, never cached, and retried
        little (a person waits for the answer). Only for an installed app: an inbound webhook's
        URL would answer as the webhook's owner whatever token came with the request."""
        if portal.mode != "app":
            raise ValueError(f"portal {portal.domain} is in {portal.mode} mode: it has no user tokens")
        return B24Client.for_token(
            self.session,
            portal.client_endpoint,
            access_token,
            throttle=self._bucket(portal.member_id),
            timeout_s=min(self.settings.rest_timeout_s, USER_TIMEOUT_S),
            max_retries=1,
            user_agent=self.user_agent,
            on_request=self.metrics.on_rest if self.metrics else None,
        )
