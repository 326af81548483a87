"""Installing callcoach into a portal and removing it: the install verified with the OAuth server
(``b24.install_check``), tokens stored, events bound, and the install steps other parts
contribute (chat bot, CoPilot engine) run."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from callcoach.b24.auth import DEFAULT_OAUTH_URL
from callcoach.b24.client import B24Client
from callcoach.b24.errors import B24Error
from callcoach.b24.install_check import InstallClaim, InstallRefused, VerifiedInstall, verify_install
from callcoach.config import Settings
from callcoach.portal_clients import PortalClients
from callcoach.storage import Store
from callcoach.storage.portals import Portal

log = logging.getLogger(__name__)

EVENTS_PATH = "/b24/events"
INSTALL_PATH = "/b24/install"
# Bound on every install: Bitrix24 drops bindings when the app is updated or reinstalled.
BOUND_EVENTS = ("ONVOXIMPLANTCALLEND", "ONAPPUNINSTALL")

InstallStep = Callable[[Portal, B24Client], Awaitable[None]]


class InstallError(ValueError):
    """The install request lacks what an install needs; the message says what."""


__all__ = ["InstallError", "InstallRefused", "InstallResult", "Installer"]


@dataclass
class InstallResult:
    portal: Portal
    bound: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # install steps that ran without error
    warnings: list[str] = field(default_factory=list)


class Installer:
    def __init__(self, settings: Settings, store: Store, clients: PortalClients) -> None:
        self.settings = settings
        self.store = store
        self.clients = clients
        self.steps: list[tuple[str, InstallStep]] = []

    def add_step(self, name: str, step: InstallStep) -> None:
        self.steps.append((name, step))

    async def install(self, auth: Mapping[str, Any]) -> InstallResult:
        """The "API only" form: ONAPPINSTALL's ``auth`` block."""
        try:
            claim = InstallClaim.from_onappinstall(auth)
        except ValueError as exc:
            raise InstallError(str(exc)) from None
        return await self.install_claim(claim)

    async def install_frame(self, query: Mapping[str, str], form: Mapping[str, str]) -> InstallResult:
        """The install page of an app with an interface (settings/oauth/simple-way.md fields)."""
        try:
            claim = InstallClaim.from_frame(query, form)
        except ValueError as exc:
            raise InstallError(str(exc)) from None
        return await self.install_claim(claim)

    async def verify(self, claim: InstallClaim) -> VerifiedInstall:
        """Ask the OAuth server from configuration (never an address from the request);
        ``InstallRefused`` when it does not vouch for the claim."""
        settings = self.settings
        return await verify_install(
            self.clients.session,
            claim,
            oauth_url=str(settings.oauth_url) if settings.oauth_url else DEFAULT_OAUTH_URL,
            client_id=settings.client_id,
            client_secret=settings.client_secret.get_secret_value(),
            timeout_s=settings.rest_timeout_s,
            user_agent=self.clients.user_agent,
        )

    async def install_claim(self, claim: InstallClaim) -> InstallResult:
        """Verify, then store the portal, bind events, run the steps. A refused claim raises
        ``InstallRefused`` and has changed nothing."""
        verified = await self.verify(claim)
        portal = await self.store.portals.upsert_install(
            member_id=verified.member_id,
            domain=verified.domain,
            client_endpoint=verified.client_endpoint,
            server_endpoint=verified.server_endpoint,
            access_token=verified.access_token,
            refresh_token=verified.refresh_token,
            expires_at=verified.expires_at,
            application_token=verified.application_token,
            scope=verified.scope,
        )
        self.clients.forget(portal.member_id)
        client = self.clients.for_portal(portal)
        result = InstallResult(portal)
        try:
            result.bound = await self.bind_events(client)
        except B24Error as exc:
            result.warnings.append(f"event.bind failed: {exc}")  # the reason is shown on the install page
            log.warning("binding events on %s failed: %s", portal.domain, exc)
        for name, step in self.steps:
            try:
                await step(portal, client)
            except Exception as exc:  # one failing extra must not undo the install
                result.warnings.append(f"{name} failed: {exc}")
                log.warning("install step %s on %s failed: %s", name, portal.domain, exc)
            else:
                result.steps.append(name)
        log.info(
            "installed on %s (%s form, bound %s)",
            portal.domain,
            claim.form,
            ", ".join(result.bound) or "nothing new",
        )
        return result

    async def bind_events(self, client: B24Client) -> list[str]:
        base = self.settings.public_base()
        if not base:
            log.warning("CALLCOACH_PUBLIC_URL is not set: events are not bound, only the sweep finds calls")
            return []
        handler = base + EVENTS_PATH
        existing = await client.call("event.get")
        have = {
            (str(b.get("event", "")).upper(), str(b.get("handler", "")))
            for b in (existing if isinstance(existing, list) else [])
        }
        bound = []
        for name in BOUND_EVENTS:
            if (name, handler) in have:
                continue
            try:
                await client.call("event.bind", {"event": name, "handler": handler})
            except B24Error as exc:
                if exc.code != "ERROR_HANDLER_ALREADY_EXIST":
                    raise
            bound.append(name)
        return bound

    async def uninstall(self, portal: Portal, *, clean: bool) -> None:
        self.clients.forget(portal.member_id)
        if clean:
            await self.store.portals.delete(portal.id)
            log.info("uninstalled from %s, data removed", portal.domain)
        else:
            await self.store.portals.mark_uninstalled(portal.id)
            log.info("uninstalled from %s, data kept", portal.domain)
