"""OAuth tokens (settings/oauth), event bindings and offline events (api-reference/events), and the
portal's outbound side: both install forms, event deliveries and bot events.

A part of ``FakePortal`` (tests/fakes/portal/server.py)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.portal.models import FakeError, _int, php_form


class OAuthEvents:
    # --- tokens --------------------------------------------------------------------------------
    def _issue_tokens(self, user_id: int = 1) -> tuple[str, str]:
        access, refresh = secrets.token_hex(24), secrets.token_hex(24)
        self._access[access] = {"expired": False, "user_id": user_id}
        self._oauth._refresh_owner[refresh] = self
        return access, refresh

    def _auth_block(self, *, with_tokens: bool = True, user_id: int = 1) -> dict[str, Any]:
        block: dict[str, Any] = {
            "domain": self.domain,
            "server_endpoint": self.server_endpoint,
            "client_endpoint": self.client_endpoint,
            "member_id": self.member_id,
            "application_token": self.application_token,
        }
        if with_tokens:
            access, refresh = self._issue_tokens(user_id)
            block.update(
                {
                    "access_token": access,
                    "refresh_token": refresh,
                    "expires": int(time.time()) + 3600,
                    "expires_in": 3600,
                    "scope": self.scope,
                    "status": "L",
                    "user_id": user_id,
                }
            )
        return block

    async def _token(self, request: web.Request) -> web.Response:
        """The OAuth server's renewal (settings/oauth/auto-renewal.md): GET with grant_type,
        client_id, client_secret, refresh_token. Only refresh tokens this server issued are
        renewed, each once; the answer names the portal the token belongs to."""
        q = request.query
        if q.get("grant_type") != "refresh_token":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if q.get("client_id") != self.client_id or q.get("client_secret") != self.client_secret:
            return web.json_response(
                {"error": "invalid_client", "error_description": "Invalid client credentials"}, status=401
            )
        owner = self._refresh_owner.pop(q.get("refresh_token", ""), None)  # single use
        if owner is None:
            return web.json_response(
                {"error": "invalid_grant", "error_description": "Invalid refresh token"}, status=400
            )
        owner.access_token, owner.refresh_token = owner._issue_tokens()
        owner.refresh_count += 1
        return web.json_response(
            {
                "access_token": owner.access_token,
                "refresh_token": owner.refresh_token,
                "expires": int(time.time()) + 3600,
                "expires_in": 3600,
                "scope": owner.scope,
                # auto-renewal.md: "domain" is the authorization server's domain
                # (oauth.bitrix.info), not the portal's; the portal is in client_endpoint.
                "domain": self.domain,
                "server_endpoint": self.server_endpoint,
                "status": "L",
                "client_endpoint": owner.client_endpoint,
                "member_id": owner.member_id,
                "user_id": 1,
            }
        )

    # --- events ------------------------------------------------------------------------------------
    def m_event_bind(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/events/event-bind.md (a duplicate gives ERROR_HANDLER_ALREADY_EXIST)
        self._require_app(ctx, "event.bind")
        event, handler = (
            str(p.get("event") or p.get("EVENT") or "").upper(),
            p.get("handler") or p.get("HANDLER"),
        )
        if not event or not handler:
            raise FakeError("ERROR_REQUIRED_PARAMETERS_MISSING", "Required parameters missing", 400)
        offline = str(p.get("event_type") or p.get("EVENT_TYPE") or "online").lower() == "offline"
        for b in self.bindings:
            if b["event"] == event and b["handler"] == handler and b["offline"] == offline:
                raise FakeError("ERROR_HANDLER_ALREADY_EXIST", "Handler already binded", 400)
        self.bindings.append(
            {"event": event, "handler": handler, "auth_type": _int(p.get("auth_type"), 0), "offline": offline}
        )
        return True

    def m_event_get(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/events/event-get.md
        self._require_app(ctx, "event.get")
        return [
            {
                "event": b["event"],
                "handler": b["handler"] if not b["offline"] else "",
                "auth_type": str(b["auth_type"]),
                "offline": 1 if b["offline"] else 0,
            }
            for b in self.bindings
        ]

    def m_event_unbind(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/events/event-unbind.md
        self._require_app(ctx, "event.unbind")
        event = str(p.get("event") or p.get("EVENT") or "").upper()
        handler = p.get("handler") or p.get("HANDLER")
        before = len(self.bindings)
        self.bindings = [
            b
            for b in self.bindings
            if not (b["event"] == event and (handler in (None, "") or b["handler"] == handler))
        ]
        return {"count": before - len(self.bindings)}

    def m_event_offline_get(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/events/event-offline-get.md
        self._require_app(ctx, "event.offline.get")
        limit = _int(p.get("limit"), 50) or 50
        clear = str(p.get("clear", "1")) not in ("0", "false")
        picked = [e for e in self.offline_events if e["PROCESS_ID"] is None][:limit]
        process_id = secrets.token_hex(8)
        for e in picked:
            e["PROCESS_ID"] = process_id
        if clear:
            self.offline_events = [e for e in self.offline_events if e not in picked]
        return {
            "process_id": process_id,
            "events": [{k: v for k, v in e.items() if k != "PROCESS_ID"} for e in picked],
        }

    def m_event_offline_clear(self, p: dict[str, Any], ctx: dict[str, Any]) -> Any:
        # api-reference/events/event-offline-clear.md
        self._require_app(ctx, "event.offline.clear")
        pid = p.get("process_id")
        self.offline_events = [e for e in self.offline_events if e["PROCESS_ID"] != pid]
        return True

    # --- outbound: install, events, bot events --------------------------------------------------------
    async def _post_form(
        self, url: str, data: Mapping[str, Any], *, json_body: bool = False
    ) -> dict[str, Any]:
        assert self._session is not None, "start() the portal first"
        if json_body:
            kwargs: dict[str, Any] = {"json": data}
        else:
            kwargs = {
                "data": php_form(data),
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            }
        async with self._session.post(url, timeout=aiohttp.ClientTimeout(total=30), **kwargs) as resp:
            text = await resp.text()
            info = {"url": url, "event": data.get("event"), "status": resp.status, "text": text}
        self.deliveries.append(info)
        return info

    async def install(self, app_install_url: str, *, auth: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The "API only" install (settings/app-installation/local-apps/installation-callback.md,
        api-reference/common/events/on-app-install.md): one form-encoded ONAPPINSTALL POST at the
        initial installation path; the app counts as installed at once. ``auth`` overrides fields
        of the auth block (a forger's request). Returns {status, text}."""
        block = self._auth_block()
        block.pop("user_id", None)
        block.pop("expires", None)
        if auth is None:
            self.access_token, self.refresh_token = block["access_token"], block["refresh_token"]
            self.app_installed = True  # installation-finish.md: no installFinish for API-only apps
        else:
            block.update(auth)
        data = {
            "event": "ONAPPINSTALL",
            "data": {"VERSION": "1", "ACTIVE": "Y", "INSTALLED": "Y", "LANGUAGE_ID": "ru"},
            "ts": int(time.time()),
            "auth": block,
        }
        return await self._post_form(app_install_url, data)

    # what the install page must do in the browser (installation-finish.md, bx24-install-finish.md)
    _JS_LIBRARY = re.compile(r"<script[^>]+src=[\"'](?:https:)?//api\.bitrix24\.com/api/v1/?[\"']")
    _INSTALL_FINISH = re.compile(r"BX24\.installFinish\(\s*\)")

    async def install_in_frame(
        self,
        install_path: str,
        *,
        user_id: int = 1,
        form: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An app with an interface (installation-finish.md, local-apps/installation-master.md):
        the admin opens the app and the portal loads the "initial installation path" in a frame
        with a POST like any app page (settings/oauth/simple-way.md): DOMAIN, PROTOCOL, LANG,
        APP_SID in the query; AUTH_ID, AUTH_EXPIRES, REFRESH_ID, SERVER_ENDPOINT,
        APPLICATION_TOKEN, APPLICATION_SCOPE, member_id, status, PLACEMENT in the body.

        Then the browser runs the page: when it loads the BX24 library and calls
        ``BX24.installFinish()`` the app becomes installed and events start to flow. ``form`` and
        ``query`` override fields (a forger's request). Returns {status, text, finished}."""
        assert self._session is not None, "start() the portal first"
        access, refresh = self._issue_tokens(user_id)
        body = {
            "AUTH_ID": access,
            "AUTH_EXPIRES": "3600",
            "REFRESH_ID": refresh,
            "SERVER_ENDPOINT": self.server_endpoint,
            "APPLICATION_TOKEN": self.application_token,
            "APPLICATION_SCOPE": self.scope,
            "member_id": self.member_id,
            "status": "L",
            "PLACEMENT": "DEFAULT",
            **(form or {}),
        }
        params = {
            "DOMAIN": self.domain,
            "PROTOCOL": "1" if self.url.startswith("https") else "0",
            "LANG": "ru",
            "APP_SID": secrets.token_hex(16),
            **(query or {}),
        }
        if form is None and query is None:
            self.access_token, self.refresh_token = access, refresh
        async with self._session.post(
            install_path, params=params, data=body, timeout=aiohttp.ClientTimeout(total=60)
        ) as resp:
            text = await resp.text()
            info: dict[str, Any] = {"url": install_path, "status": resp.status, "text": text}
        finished = (
            resp.status == 200
            and "text/html" in resp.headers.get("Content-Type", "")
            and bool(self._JS_LIBRARY.search(text))
            and bool(self._INSTALL_FINISH.search(text))
        )
        if finished and form is None and query is None:
            self.install_finish_calls += 1
            self.app_installed = True
        info["finished"] = finished
        self.deliveries.append({**info, "event": "INSTALL_PAGE"})
        return info

    async def uninstall(self, url: str, clean: bool = False) -> dict[str, Any]:
        data = {
            "event": "ONAPPUNINSTALL",
            "data": {"LANGUAGE_ID": "ru", "CLEAN": 1 if clean else 0},
            "ts": int(time.time()),
            "auth": self._auth_block(with_tokens=False),
        }
        return await self._post_form(url, data)

    async def send_event(
        self,
        handler_url: str,
        event: str,
        data: Mapping[str, Any],
        *,
        application_token: str | None = None,
        json_body: bool = False,
        handler_id: int | None = None,
        user_id: int = 1,
    ) -> dict[str, Any]:
        auth = self._auth_block(user_id=user_id)
        if application_token is not None:
            auth["application_token"] = application_token
        payload = {
            "event": event.upper(),
            "event_handler_id": handler_id or next(self._ids),
            "data": dict(data),
            "ts": int(time.time()),
            "auth": auth,
        }
        return await self._post_form(handler_url, payload, json_body=json_body)

    async def send_bound_event(self, event: str, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Deliver to every online handler bound with event.bind; queue it for offline bindings.
        Nothing is sent while the app is not installed (installation-finish.md: "Events will not
        be sent to the handler, even after a successful event.bind")."""
        if not self.app_installed:
            self.withheld_events.append({"event": event.upper(), "data": dict(data)})
            return []
        out = []
        for b in list(self.bindings):
            if b["event"] != event.upper():
                continue
            if b["offline"]:
                self.offline_events.append(
                    {
                        "ID": next(self._event_seq),
                        "EVENT_NAME": event.upper(),
                        "EVENT_DATA": dict(data),
                        "EVENT_ADDITIONAL": {},
                        "MESSAGE_ID": secrets.token_hex(8),
                        "PROCESS_ID": None,
                    }
                )
                continue
            out.append(await self.send_event(b["handler"], event, data))
        return out
