"""The manager's message after each analysed call (``FlowDeps.notify``): through the bot when the
portal has one, otherwise a system notification."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callcoach.b24.client import B24Client
from callcoach.bot.keyboards import command_button, keyboard
from callcoach.bot.sender import message_commands
from callcoach.pipeline.models import Findings
from callcoach.storage import Job
from callcoach.storage.portals import Portal
from callcoach.texts import manager_tip


def notify_commands(
    portal: Portal, job: Job, findings: Findings, page_url: str | None
) -> list[tuple[str, Mapping[str, Any]]]:
    """The REST commands of the manager's message (the write-back sends them in its batch)."""
    if not job.manager_id:
        return []
    text = manager_tip(findings, page_url=page_url)
    if portal.bot_id:
        buttons = keyboard(
            [
                command_button("Разбор звонка", "call", job.call_id),
                command_button("Моя статистика", "stats", "week"),
            ]
        )
        return [*message_commands(portal.bot_id, str(job.manager_id), text, keyboard=buttons)]
    return [("im.notify.system.add", {"USER_ID": job.manager_id, "MESSAGE": text})]


async def notify_manager(
    portal: Portal, client: B24Client, job: Job, findings: Findings, page_url: str | None
) -> None:
    for method, params in notify_commands(portal, job, findings, page_url):
        await client.call(method, params)
