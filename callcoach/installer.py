"""Installing callcoach into a portal and removing it: tokens stored, events bound, and the
install steps other parts contribute (chat bot, CoPilot engine) run."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from callcoach.b24.client import B24Client
from callcoach.b24.errors import B24Error
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


@dataclass
class InstallResult:
    portal: Portal
    bound: list[str] = field(default_factory=list)
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
        """Handle ONAPPINSTALL's ``auth`` block: store the portal, bind events, run the steps."""
        missing = [k for k in ("member_id", "domain", "access_token", "application_token") if not auth.get(k)]
        if missing:
            raise InstallError("install without auth[" + "], auth[".join(missing) + "]")
        domain = str(auth["domain"])
        client_endpoint = str(auth.get("client_endpoint") or f"https://{domain}/rest/")
        portal = await self.store.portals.upsert_install(
            member_id=str(auth["member_id"]),
            domain=domain,
            client_endpoint=client_endpoint,
            server_endpoint=str(auth.get("server_endpoint") or "https://oauth.bitrix.info/rest/"),
            access_token=str(auth["access_token"]),
            refresh_token=str(auth.get("refresh_token") or ""),
            expires_at=time.time() + float(auth.get("expires_in") or 3600),
            application_token=str(auth["application_token"]),
            scope=str(auth.get("scope") or ""),
        )
        self.clients.forget(portal.member_id)
        client = self.clients.for_portal(portal)
        result = InstallResult(portal)
        try:
            result.bound = await self.bind_events(client)
        except B24Error as exc:
            result.warnings.append(f"event.bind failed: {exc.code}")
            log.warning("binding events on %s failed: %s", portal.domain, exc.code)
        for name, step in self.steps:
            try:
                await step(portal, client)
            except Exception as exc:  # one failing extra must not undo the install
                result.warnings.append(f"{name} failed: {exc}")
                log.warning("install step %s on %s failed: %s", name, portal.domain, exc)
        log.info("installed on %s (bound %s)", portal.domain, ", ".join(result.bound) or "nothing new")
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
