"""The call-finished flow, one stage at a time: each stage reads what the job already holds,
does its work, and stores the result before the job moves on, so a job resumed after a crash
repeats at most the stage it was in — and the write-back stage checks the portal before it
writes, so nothing is posted twice.

queued → fetching → transcribing → posting → done  (or skipped / failed with a reason)
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from callcoach import texts as fmt
from callcoach.b24.client import B24Client
from callcoach.b24.errors import (
    AccessDenied,
    B24Error,
    B24TransportError,
    DownloadTooLarge,
    ExpiredToken,
    ForbiddenDownload,
    InsufficientScope,
    InternalServerError,
    MethodNotFound,
    NotFound,
    OperationTimeLimit,
    QueryLimitExceeded,
    ValidationFailed,
)
from callcoach.config import Settings
from callcoach.pipeline.models import Category, Findings
from callcoach.storage import Job, Store
from callcoach.storage.portals import Portal
from callcoach.values import as_float, as_int
from callcoach.workflow.batched_io import Command, PortalBatcher, keyed, lookup_call, step_of

log = logging.getLogger(__name__)

ENTITY_TYPES = {1: "lead", 2: "deal", 3: "contact", 4: "company"}
ENTITY_PREFERENCE = (2, 1, 3, 4)  # a deal first, then lead, contact, company
# Errors no retry can mend: the job fails with the reason at once.
# Errors the portal answered that say the method did not run and may run later: a write-back
# step that meets one is tried again (the job's attempt fails and is retried with backoff).
# A transport error (timeout, broken connection) is not among them: the write may have run.
TRANSIENT = (InternalServerError, QueryLimitExceeded, OperationTimeLimit, ExpiredToken)
PERMANENT = (
    ForbiddenDownload,
    DownloadTooLarge,
    AccessDenied,
    InsufficientScope,
    MethodNotFound,
    NotFound,
    ValidationFailed,  # ERROR_CORE: the same parameters are refused again
)


class Skip(Exception):
    """The call needs no analysis; the message is the reason shown to people."""


class Retry(Exception):
    """Not ready yet (no recording); try again at ``at``."""

    def __init__(self, reason: str, at: float) -> None:
        super().__init__(reason)
        self.at = at


class Fail(Exception):
    """The call cannot be analysed; the message is the reason."""


class LeaseLost(Exception):
    """This worker no longer holds the job's lease: another one may be working on it, so this
    one must write nothing more (above all, no comment)."""


@dataclass
class FlowDeps:
    settings: Settings
    store: Store
    client_for: Callable[[Portal], B24Client]
    analyze: Callable[[Path, Sequence[Category]], Awaitable[Findings]]
    categories_for: Callable[[Portal], Awaitable[list[Category]]]
    page_url: Callable[[Job], str | None]
    notify: Callable[[Portal, B24Client, Job, Findings, str | None], Awaitable[None]] | None = None
    # the manager's message as REST commands, so the write-back batch carries it (else ``notify``)
    notify_commands: Callable[[Portal, Job, Findings, str | None], list[Command]] | None = None
    # write-backs of calls finishing together share one batch (see batched_io.PortalBatcher)
    write_batch: PortalBatcher | None = None
    read_batch: PortalBatcher | None = None  # and their lookups (idempotent: replayed on errors)
    summarize: Callable[[Findings], Awaitable[str | None]] | None = None
    group_proposals: Callable[[Portal], Awaitable[None]] | None = None
    on_stage: Callable[[str, float], None] | None = None


class CallFlow:
    def __init__(self, deps: FlowDeps) -> None:
        self.d = deps

    # Each stage returns the values to store and the next state.
    async def run_stage(self, job: Job, portal: Portal) -> tuple[str, dict[str, Any]]:
        handler = {
            "queued": self.check,
            "fetching": self.fetch,
            "transcribing": self.analyse,
            "posting": self.post,
        }[job.state]
        started = time.monotonic()
        try:
            return await handler(job, portal)
        finally:
            if self.d.on_stage:
                self.d.on_stage(job.state, time.monotonic() - started)

    # --- queued: is the call worth analysing? ------------------------------------------------------
    async def check(self, job: Job, portal: Portal) -> tuple[str, dict[str, Any]]:
        reason = skip_reason(job.call, self.d.settings.min_call_seconds)
        if reason:
            raise Skip(reason)
        return "fetching", {}

    # --- fetching: find and download the recording --------------------------------------------------
    async def fetch(self, job: Job, portal: Portal) -> tuple[str, dict[str, Any]]:
        client = self.d.client_for(portal)
        # the row, its file and the activity's bindings: one request (batched_io.lookup_call)
        found = await lookup_call(
            client,
            job.call_id,
            as_int(job.call.get("CRM_ACTIVITY_ID")),
            batcher=self.d.read_batch,
            portal_key=portal.member_id,
        )
        row = found.row
        call = {**job.call, **{k: v for k, v in row.items() if v not in (None, "")}}
        # The statistic row is the authority for duration and connection (sweep jobs have no event).
        if row:
            await self.check(_with_call(job, call), portal)
        file_id = row.get("RECORD_FILE_ID")
        if not file_id:
            polls = job.record_polls + 1
            schedule = self.d.settings.record_retry_minutes
            if polls > len(schedule):
                raise Skip(f"no recording after {polls} checks")
            raise Retry("recording not ready", time.time() + schedule[polls - 1] * 60)
        if found.file_error is not None:
            raise found.file_error
        info = found.file
        url = str((info or {}).get("DOWNLOAD_URL") or "")
        if not url:
            raise Fail(f"recording file {file_id} has no DOWNLOAD_URL")
        dest = self.d.settings.audio_dir / str(portal.id) / f"{_safe(job.call_id)}{_suffix(info)}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Recordings come only from the portal's own host (its Drive), never from elsewhere.
        allowed = {urlsplit(portal.client_endpoint).netloc, portal.domain}
        await client.download(
            url,
            dest,
            max_bytes=self.d.settings.max_recording_mb * 1024 * 1024,
            allowed_hosts=allowed,
            referer=f"https://{portal.domain}/",  # general-principles.md: the portal's address
        )
        entity_type, entity_id = self.find_entity(call, found.bindings, found.bindings_error)
        return "transcribing", {
            "call": call,
            "audio_path": str(dest),
            "audio_sha256": await asyncio.to_thread(_sha256, dest),
            "entity_type": entity_type,
            "entity_id": entity_id,
            "manager_id": as_int(call.get("PORTAL_USER_ID")),
            "call_type": as_int(call.get("CALL_TYPE")),
            "call_start": _timestamp(call.get("CALL_START_DATE")),
            "duration": as_float(call.get("CALL_DURATION")),
            "record_polls": job.record_polls + 1,
        }

    def find_entity(
        self,
        call: dict[str, Any],
        bindings: list[dict[str, Any]] | None,
        error: B24Error | None = None,
    ) -> tuple[str | None, int | None]:
        if error is not None:
            log.warning("crm.activity.binding.list failed: %s", error.code)
        found = {as_int(b.get("entityTypeId")): as_int(b.get("entityId")) for b in bindings or []}
        for type_id in ENTITY_PREFERENCE:
            if found.get(type_id):
                return ENTITY_TYPES[type_id], found[type_id]
        kind = str(call.get("CRM_ENTITY_TYPE") or "").lower()
        entity_id = as_int(call.get("CRM_ENTITY_ID"))
        if kind in ENTITY_TYPES.values() and entity_id:
            return kind, entity_id
        return None, None

    # --- transcribing (and analysing) ------------------------------------------------------------------
    async def analyse(self, job: Job, portal: Portal) -> tuple[str, dict[str, Any]]:
        if not job.audio_path or not Path(job.audio_path).exists():
            return "fetching", {"audio_path": None}  # audio lost (retention, disk): fetch again
        categories = await self.d.categories_for(portal)
        findings = await self.d.analyze(Path(job.audio_path), categories)
        if self.d.summarize is not None:
            try:
                summary = await self.d.summarize(findings)
                if summary:
                    findings.summary = summary
            except Exception as exc:  # the template summary stays; the LLM is an extra
                log.warning("LLM summary failed: %s", exc)
        quotes = [c.quote for c in findings.new_category_candidates]
        await self.d.store.categories.add_candidates(portal.id, job.id, quotes)
        if quotes and self.d.group_proposals is not None:
            await self.d.group_proposals(portal)
        return "posting", {"findings": findings.model_dump(mode="json")}

    # --- posting: write back exactly once ----------------------------------------------------------
    async def post(self, job: Job, portal: Portal) -> tuple[str, dict[str, Any]]:
        settings = self.d.settings
        client = self.d.client_for(portal)
        findings = Findings.model_validate(job.findings)
        page = self.d.page_url(job)
        done = list(job.done_steps)
        steps: dict[str, list[Command]] = {}  # what is still to write, one batch for all of it

        # what the timeline says of an earlier write-back that got no answer: None when unknown
        comment_found: bool | None = None
        if job.entity_type and job.entity_id and "comment" not in done:
            if "comment-intent" in done:
                comment_found = await self._comment_posted(client, job)
            if comment_found:
                done.append("comment")  # an earlier attempt posted it: never twice
            else:
                text = fmt.timeline_comment(findings, call_id=job.call_id, page_url=page)
                fields = {"ENTITY_ID": job.entity_id, "ENTITY_TYPE": job.entity_type, "COMMENT": text}
                steps["comment"] = [("crm.timeline.comment.add", {"fields": fields})]
        app_mode = portal.mode == "app"
        activity_id = as_int(job.call.get("CRM_ACTIVITY_ID"))
        if app_mode and settings.post_layout_blocks and job.entity_type and activity_id:
            type_id = {v: k for k, v in ENTITY_TYPES.items()}[job.entity_type]
            layout = {
                "entityTypeId": type_id,
                "entityId": job.entity_id,
                "activityId": activity_id,
                "layout": fmt.layout_blocks(findings, page_url=page),
            }
            steps["layout"] = [("crm.activity.layout.blocks.set", layout)]
        if app_mode and settings.post_transcription and findings.segments:
            messages = {"CALL_ID": job.call_id, "MESSAGES": fmt.transcription_messages(findings)}
            steps["transcription"] = [("telephony.call.attachTranscription", messages)]
        notify_by_call = False
        if settings.notify_manager and job.manager_id:
            if self.d.notify_commands is not None:
                steps["notify"] = self.d.notify_commands(portal, job, findings, page)
            else:
                notify_by_call = self.d.notify is not None
        steps = {name: commands for name, commands in steps.items() if name not in done and commands}
        if "notify" in steps and "notify-intent" in done and comment_found is not False:
            # An earlier write-back with the tip got no answer (timed out, connection lost): the
            # portal may have delivered it. A tip cannot be looked up the way the comment's marker
            # can, and a second tip is worse than none, so it is not sent again. But when that
            # write-back also carried the comment, the timeline tells: the portal runs a batch's
            # commands in order (rest/batch.md; a long one goes out in chunks, one after the
            # other) and the comment comes before the tip, so no comment means no tip either,
            # and the tip goes again (comment_found is False).
            log.warning("call %s: the manager's tip may not have arrived; not sent twice", job.call_id)
            del steps["notify"]
            done.append("notify")

        # A crash (or a lost answer) after the portal accepted a write but before we stored that
        # fact would write it again on resume. So the intents are stored first: a resumed job that
        # finds the comment's intent looks for its marker on the timeline before it writes; one
        # that finds the tip's intent without an answer does not send the tip again.
        intents = [f"{name}-intent" for name in ("comment", "notify") if name in steps]
        if any(intent not in done for intent in intents):
            done.extend(intent for intent in intents if intent not in done)
            await self._save(job, done_steps=done)
        fatal: B24Error | None = None
        if steps:
            commands: dict[str, Command] = {}
            for name, cmds in steps.items():
                commands.update(keyed(name, cmds))
            try:
                if self.d.write_batch is not None:
                    res = await self.d.write_batch.run(client, portal.member_id, commands)
                else:
                    res = await client.batch(commands)
            except B24Error as exc:
                if "notify" in steps and not _may_have_run(exc):  # refused whole: send it next time
                    done.remove("notify-intent")
                    await self._save(job, done_steps=done)
                raise
            if "notify" in steps:
                sent = [key for key in res.results if step_of(key) == "notify"]
                if not sent:  # the portal answered that no part of the tip went: it may go again
                    done.remove("notify-intent")
                elif any(step_of(key) == "notify" for key in res.errors):
                    # part of a long tip went: resending would repeat that part
                    log.warning("call %s: part of the manager's tip failed", job.call_id)
                    res.errors = {k: e for k, e in res.errors.items() if step_of(k) != "notify"}
            for name in steps:
                errors = [err for key, err in res.errors.items() if step_of(key) == name]
                if errors and (name == "comment" or isinstance(errors[0], TRANSIENT)):
                    # the comment is the point: the job retries or fails on it; any step the
                    # portal refused for now (500, limit) is tried again with the job
                    fatal = fatal or errors[0]
                    continue
                if errors:
                    log.warning("%s failed for call %s: %s", name, job.call_id, errors[0].code)
                done.append(name)
            if "comment" in done and "comment" in steps:
                await self._save(job, comment_id=as_int(res.results.get("comment")))
        await self._save(job, done_steps=done)
        if fatal is not None:
            raise fatal
        if notify_by_call and "notify" not in done and self.d.notify is not None:
            try:
                await self.d.notify(portal, client, job, findings, page)
            except B24Error as exc:
                if isinstance(exc, TRANSIENT):
                    raise  # the job is tried again later, from this step on
                # a refusal will not mend; a timeout may have delivered it: a second tip is
                # worse than none
                log.warning("notify failed for call %s: %s", job.call_id, exc.code)
            done.append("notify")
            await self._save(job, done_steps=done)
        reason = None if job.entity_type else "no CRM entity bound to the call: no timeline comment"
        return "done", {"done_steps": done, "reason": reason}

    async def _comment_posted(self, client: B24Client, job: Job) -> bool:
        """Did an earlier attempt post this call's comment? (looks for its marker; stores its id)"""
        mark = fmt.marker(job.call_id)
        # crm-timeline-comment-list.md: pages of 50 by start; newest first, on any page
        existing = client.iter_pages(
            "crm.timeline.comment.list",
            {
                "filter": {"ENTITY_ID": job.entity_id, "ENTITY_TYPE": job.entity_type},
                "select": ["ID", "COMMENT"],
                "order": {"ID": "DESC"},
            },
        )
        async for item in existing:
            if mark in str(item.get("COMMENT", "")):
                await self._save(job, comment_id=as_int(item.get("ID")))
                return True
        return False

    async def _save(self, job: Job, **values: Any) -> None:
        """Store progress of a stage, only while this worker holds the job's lease."""
        if not await self.d.store.jobs.save(job.id, job.lease_owner, **values):
            raise LeaseLost(f"call {job.call_id}: the lease passed to another worker")


def skip_reason(call: dict[str, Any], min_call_seconds: float) -> str | None:
    """Why a call needs no analysis (not connected, too short), from its facts alone; None when
    it does. The intake asks too, so a missed call is settled without a trip through the queue."""
    code = str(call.get("CALL_FAILED_CODE") or "200")
    if code != "200":
        reason = call.get("CALL_FAILED_REASON") or ""
        return f"call not connected (code {code}{', ' + str(reason) if reason else ''})"
    duration = as_float(call.get("CALL_DURATION"))
    if duration is not None and duration < min_call_seconds:
        return f"call shorter than {min_call_seconds} s ({duration:g} s)"
    return None


def _may_have_run(exc: B24Error) -> bool:
    """Whether a request that raised ``exc`` may still have run on the portal: a timeout or a
    broken connection (the answer is lost), or a 5xx (the portal failed somewhere under way). The
    other errors are answers the portal gives before it runs anything (limits, auth, rights)."""
    return isinstance(exc, (B24TransportError, InternalServerError)) or type(exc) is B24Error


def is_permanent(exc: BaseException) -> bool:
    return isinstance(exc, PERMANENT)


def _with_call(job: Job, call: dict[str, Any]) -> Job:
    from dataclasses import replace

    return replace(job, call=call)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _safe(call_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in call_id)[:120] or "call"


def _suffix(info: Any) -> str:
    name = str((info or {}).get("NAME") or "")
    suffix = Path(name).suffix.lower()
    return suffix if suffix in (".mp3", ".wav", ".ogg", ".m4a", ".opus", ".webm", ".flac") else ".mp3"


def _timestamp(value: Any) -> float | None:
    """Bitrix24 dates are ISO 8601 with an offset (2026-11-20T10:15:00+03:00)."""
    if not value:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None
