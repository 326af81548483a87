"""Signed downloads, telephony and disk (api-reference/telephony, disk), the CRM methods callcoach
writes to (activities, deals, timeline comments, layout blocks) and system notifications.

A part of ``FakePortal`` (tests/fakes/portal/server.py)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from tests.fakes.portal.models import MSK, NGINX_404, FakeError, _int, _match_filter


class TelephonyCrm:
    # --- downloads -----------------------------------------------------------------------------
    _TECHNICAL_AGENT = re.compile(r"^(python|aiohttp|curl|wget|go-http|java|okhttp)[/-]|aiohttp/", re.I)

    def _download_headers_missing(self, request: web.Request) -> list[str]:
        """settings/how-to-call-rest-api/general-principles.md: a signed download link is fetched
        with ``User-Agent: integration-name/version`` (not empty, not a technical value),
        ``Accept: */*`` (or the file's MIME type), ``Accept-Language`` and
        ``Referer: https://<portal>/``. What is missing, by name."""
        h = request.headers
        missing = []
        agent = h.get("User-Agent", "").strip()
        if not agent or self._TECHNICAL_AGENT.search(agent):
            missing.append("User-Agent")
        if not h.get("Accept", "").strip():
            missing.append("Accept")
        if not h.get("Accept-Language", "").strip():
            missing.append("Accept-Language")
        referer = h.get("Referer", "")
        if urlsplit(referer).netloc.lower() != self.domain.lower():
            missing.append("Referer")
        return missing

    async def _download(self, request: web.Request) -> web.StreamResponse:
        """``DOWNLOAD_URL`` of disk.file.get (api-reference/disk/file/disk-file-get.md):
        ``/rest/download.json?auth=…&token=disk|…``, signed: a wrong token is a 404."""
        meta = next((m for m in self.files.values() if request.query.get("token") == m["token"]), None)
        if meta is None or request.query.get("auth") not in self._access:
            return web.Response(status=404, text="not found")
        missing = self._download_headers_missing(request)
        if missing:
            self.refused_downloads.append({"missing": ", ".join(missing), "name": meta["name"]})
            return web.Response(
                status=self.bare_download_status,
                body=NGINX_404.encode(),
                content_type="text/html",
                headers={"Content-Disposition": f'attachment; filename="{meta["name"]}"'},
            )
        if self._download_failures:
            return web.Response(status=self._download_failures.popleft(), text="error")
        self.downloads.append(meta["id"])
        return web.Response(
            body=meta["data"],
            content_type="audio/mpeg",
            headers={"Content-Disposition": f'attachment; filename="{meta["name"]}"'},
        )

    # --- telephony / disk ---------------------------------------------------------------------------
    def m_voximplant_statistic_get(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/telephony/voximplant/voximplant-statistic-get.md (FILTER, SORT, ORDER, start)
        flt = self._filter_of(p)
        rows = []
        for call in sorted(self.calls_by_id.values(), key=lambda c: c.id):
            if _match_filter(call.row(), flt):
                call.polls += 1  # a poll that saw the row: the record may appear after N of them
                rows.append(call.row())
        rows = self._sorted(
            rows, None, p.get("SORT") or p.get("sort") or "ID", p.get("ORDER") or p.get("order")
        )
        return self._page(rows, p.get("start", p.get("START")))

    def m_disk_file_get(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/disk/file/disk-file-get.md (DOWNLOAD_URL: a signed /rest/download.json link)
        file_id = _int(p.get("id", p.get("ID")))
        meta = self.files.get(file_id or -1)
        if meta is None or file_id is None:
            raise FakeError("ERROR_NOT_FOUND", "Could not find entity with id", 404)
        return {
            "ID": str(file_id),
            "NAME": meta["name"],
            "TYPE": "file",
            "SIZE": str(len(meta["data"])),
            "STORAGE_ID": "1",
            "PARENT_ID": "1",
            # signed with the caller's token: "…/rest/download.json?auth=…&token=disk|…"
            "DOWNLOAD_URL": f"{self.url}/rest/download.json?"
            + urlencode({"auth": self._download_auth(ctx), "token": meta["token"]}),
            "DETAIL_URL": f"{self.url}/docs/file/{meta['name']}",
        }

    def _download_auth(self, ctx: Mapping[str, Any]) -> str:
        # a webhook call has no access token: its links carry one the portal makes up
        return str(ctx.get("token") or self._issue_tokens(self.webhook_user_id)[0])

    def m_telephony_call_attachtranscription(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/telephony/telephony-call-attach-transcription.md
        call_id = p.get("CALL_ID")
        if not call_id:  # the validation error the core answers as ERROR_CORE
            raise FakeError("ERROR_CORE", "CALL_ID should be set", 400)
        if call_id not in self.calls_by_id:
            raise FakeError("ERROR_NOT_FOUND", "Call is not found", 400)
        messages = p.get("MESSAGES")
        if not isinstance(messages, list) or not messages:
            raise FakeError("ERROR_ARGUMENT", "MESSAGES is empty", 400)
        for m in messages:
            if not isinstance(m, dict) or m.get("SIDE") not in ("User", "Client") or "MESSAGE" not in m:
                raise FakeError("ERROR_ARGUMENT", "Wrong message format", 400)
        file_id = next(self._ids)
        self.transcriptions.append({"CALL_ID": call_id, "MESSAGES": messages, "FILE_ID": file_id})
        return {"FILE_ID": file_id}

    # --- CRM ---------------------------------------------------------------------------------------
    def m_crm_activity_binding_list(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/crm/timeline/activities/binding/crm-activity-binding-list.md
        activity_id = _int(p.get("activityId"))
        for call in self.calls_by_id.values():
            if call.crm_activity_id is not None and call.crm_activity_id == activity_id:
                return [{"entityTypeId": t, "entityId": e} for t, e in call.bindings]
        if activity_id in self.activities:
            return []
        raise FakeError("NOT_FOUND", "Activity not found", 400)

    def m_crm_activity_get(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/crm/timeline/activities/activity-base/crm-activity-get.md
        act = self.activities.get(_int(p.get("id", p.get("ID"))) or -1)
        if act is None:
            raise FakeError("ERROR_NOT_FOUND", "Not found", 400)
        return act

    def m_crm_deal_get(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/crm/deals/crm-deal-get.md
        deal = self.deals.get(_int(p.get("id", p.get("ID"))) or -1)
        if deal is None:
            raise FakeError("ERROR_NOT_FOUND", "Not found", 400)
        return deal

    def m_crm_deal_list(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/crm/deals/crm-deal-list.md
        rows = [d for d in self.deals.values() if _match_filter(d, self._filter_of(p))]
        rows = self._sorted(sorted(rows, key=lambda d: int(d["ID"])), p.get("order"))
        return self._page(rows, p.get("start"))

    def m_crm_timeline_comment_add(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/crm/timeline/comments/crm-timeline-comment-add.md (ENTITY_TYPE lowercase)
        fields = p.get("fields") or p.get("FIELDS") or {}
        etype, eid, text = fields.get("ENTITY_TYPE"), _int(fields.get("ENTITY_ID")), fields.get("COMMENT")
        if etype not in ("deal", "lead", "contact", "company") or not eid or not text:
            raise FakeError(
                "ERROR_ARGUMENT", "ENTITY_ID, ENTITY_TYPE (lowercase) and COMMENT are required", 400
            )
        if etype == "deal" and eid not in self.deals:
            raise FakeError("NOT_FOUND", "Deal not found", 400)
        comment_id = next(self._ids)
        self.comments.append(
            {
                "ID": comment_id,
                "ENTITY_TYPE": etype,
                "ENTITY_ID": eid,
                "COMMENT": text,
                "AUTHOR_ID": ctx["user_id"],
                "CREATED": datetime.now(MSK).isoformat(),
            }
        )
        return comment_id

    def m_crm_timeline_comment_list(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        """api-reference/crm/timeline/comments/crm-timeline-comment-list.md: ``filter``
        (ENTITY_ID and ENTITY_TYPE required), ``order`` object on ID/CREATED/AUTHOR_ID, ``start``
        pages of 50."""
        flt = self._filter_of(p)
        if not flt.get("ENTITY_ID") or not flt.get("ENTITY_TYPE"):
            raise FakeError("ERROR_CORE", "ENTITY_ID and ENTITY_TYPE are required in filter", 400)
        rows = [{**c, "ID": str(c["ID"]), "ENTITY_ID": str(c["ENTITY_ID"])} for c in self.comments]
        rows = [r for r in rows if _match_filter(r, flt)]
        order = p.get("order")
        if isinstance(order, dict):
            order = {k: v for k, v in order.items() if str(k).upper() in ("ID", "CREATED", "AUTHOR_ID")}
        return self._page(self._sorted(rows, order), p.get("start"))

    def m_crm_activity_layout_blocks_set(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/crm/timeline/activities/layout-blocks/crm-activity-layout-blocks-set.md:
        # app context only, at most 20 blocks
        self._require_app(ctx, "crm.activity.layout.blocks.set")
        key = (_int(p.get("entityTypeId")), _int(p.get("entityId")), _int(p.get("activityId")))
        layout = p.get("layout")
        if None in key or not isinstance(layout, dict):
            raise FakeError(
                "ERROR_ARGUMENT", "entityTypeId, entityId, activityId and layout are required", 400
            )
        if key[2] not in self.activities:
            raise FakeError("NOT_FOUND", "Activity not found", 400)
        blocks = layout.get("blocks") or {}
        if len(blocks) > 20:
            raise FakeError("ERROR_ARGUMENT", "Too many blocks (max 20)", 400)
        self.layout_blocks[key] = layout  # type: ignore[index]
        return {"success": True}

    # --- im ----------------------------------------------------------------------------------------
    def m_im_notify_system_add(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/chats/notifications/im-notify-system-add.md
        nid = next(self._ids)
        self.notifications.append({"ID": nid, "USER_ID": _int(p.get("USER_ID")), "MESSAGE": p.get("MESSAGE")})
        return nid

    def m_im_message_add(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/chats/messages/im-message-add.md
        mid = next(self._ids)
        self.im_messages.append({"ID": mid, "DIALOG_ID": p.get("DIALOG_ID"), "MESSAGE": p.get("MESSAGE")})
        return mid
