"""The services one running process is made of, built once by its composition root
(``callcoach.app`` for the web tier, ``callcoach.workflow.worker`` for a worker) and shared
through a typed aiohttp AppKey (no module-level globals). Every field is typed: a feature that
adds a service adds a field here."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from callcoach.config import Settings
from callcoach.metrics import Metrics
from callcoach.rights import Directory
from callcoach.storage import Store

if TYPE_CHECKING:
    from callcoach.b24.client import B24Client
    from callcoach.bot.service import BotService
    from callcoach.copilot.service import CopilotService
    from callcoach.installer import Installer
    from callcoach.llm.base import LLMBackend
    from callcoach.pipeline.models import Category, Findings
    from callcoach.pipeline.protocol import CallAnalyzer
    from callcoach.portal_clients import PortalClients
    from callcoach.storage import Job
    from callcoach.storage.portals import Portal
    from callcoach.workflow.batched_io import Command, PortalBatcher
    from callcoach.workflow.dispatch import Dispatcher
    from callcoach.workflow.intake import Intake
    from callcoach.workflow.runner import JobRunner

Closer = Callable[[], Awaitable[Any]]
Notify = Callable[["Portal", "B24Client", "Job", "Findings", "str | None"], Awaitable[None]]
NotifyCommands = Callable[["Portal", "Job", "Findings", "str | None"], "list[Command]"]
Summarize = Callable[["Findings"], Awaitable["str | None"]]
Refine = Callable[["Findings", "list[Category]"], Awaitable["Findings"]]


@dataclass
class Scheduled:
    """A periodic job for the web tier's scheduler (e.g. the bot's fetch-mode poll)."""

    id: str
    func: Callable[[], Awaitable[Any]]
    seconds: float


@dataclass
class Services:
    settings: Settings
    store: Store
    metrics: Metrics
    session: aiohttp.ClientSession
    clients: PortalClients
    installer: Installer
    intake: Intake
    analyzer: CallAnalyzer
    executor: ThreadPoolExecutor  # the analysis runs here, off the event loop
    # write-backs of calls finishing together share one batch, and so do their lookups
    write_batch: PortalBatcher
    read_batch: PortalBatcher
    llm: LLMBackend | None = None  # built once; None when CALLCOACH_LLM is off
    # who may see whose calls, cached per portal: one for the chat bot and the dashboard
    directory: Directory = field(default_factory=Directory)
    runner: JobRunner | Dispatcher | None = None  # Dispatcher: the web tier of a scaled-out install
    copilot: CopilotService | None = None
    bot: BotService | None = None
    # the call flow's hooks: the LLM summary, the LLM's objections, the manager's message
    summarize: Summarize | None = None
    refine_objections: Refine | None = None
    notify: Notify | None = None
    notify_commands: NotifyCommands | None = None
    scheduled: list[Scheduled] = field(default_factory=list)
    model_load: asyncio.Future[None] | None = None
    # run in order at shutdown, before the HTTP session and the store close
    closers: list[Closer] = field(default_factory=list)


SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
