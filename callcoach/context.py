"""The services one running app is made of, built once in ``callcoach.app`` and shared through
a typed aiohttp AppKey (no module-level globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from callcoach.config import Settings
from callcoach.metrics import Metrics
from callcoach.rights import Directory
from callcoach.storage import Store

if TYPE_CHECKING:
    from callcoach.installer import Installer
    from callcoach.pipeline.analyzer import Analyzer
    from callcoach.portal_clients import PortalClients
    from callcoach.workflow.dispatch import Dispatcher
    from callcoach.workflow.intake import Intake
    from callcoach.workflow.runner import JobRunner


@dataclass
class Services:
    settings: Settings
    store: Store
    metrics: Metrics
    session: aiohttp.ClientSession
    clients: PortalClients
    installer: Installer
    intake: Intake
    analyzer: Analyzer
    # who may see whose calls, cached per portal: one for the chat bot and the dashboard
    directory: Directory = field(default_factory=Directory)
    runner: JobRunner | Dispatcher | None = None  # Dispatcher: the web tier of a scaled-out install
    llm: Any = None
    copilot: Any = None
    bot: Any = None
    extras: dict[str, Any] = field(default_factory=dict)


SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
