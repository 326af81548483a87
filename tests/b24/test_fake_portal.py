"""The fake portal's outbound side (install, bound events, bots, CoPilot check) against a tiny app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from callcoach.b24 import B24Client, B24Error, parse_event_body
from tests.fakes.portal import FakePortal


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[TestServer, list[dict]]]:
    got: list[dict] = []

    async def handle(request: web.Request) -> web.Response:
        got.append(parse_event_body(request.content_type, await request.read()))
        return web.Response(text="ok")

    async def check(request: web.Request) -> web.Response:
        return web.Response(status=200 if request.query.get("k") == "good" else 403)

    app = web.Application()
    app.router.add_post("/hook", handle)
    app.router.add_get("/ai", check)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, got
    await server.close()


async def test_install_and_bound_events(portal: FakePortal, session: aiohttp.ClientSession, receiver) -> None:
    server, got = receiver
    hook = str(server.make_url("/hook"))
    assert (await portal.install(hook))["status"] == 200
    auth = got[0]["auth"]
    assert got[0]["event"] == "ONAPPINSTALL" and auth["member_id"] == portal.member_id
    assert auth["expires_in"] == "3600" and auth["client_endpoint"] == portal.client_endpoint
    client = B24Client.for_portal(
        session, portal.credentials(), client_id=portal.client_id, client_secret=portal.client_secret
    )
    await client.call("event.bind", {"event": "ONVOXIMPLANTCALLEND", "handler": hook})
    with pytest.raises(B24Error) as info:
        await client.call("event.bind", {"event": "ONVOXIMPLANTCALLEND", "handler": hook})
    assert info.value.code == "ERROR_HANDLER_ALREADY_EXIST"
    portal.add_call("c1", recording=b"x", user_id=1, duration=30, crm_activity_id=55, bindings=[(2, 7)])
    await portal.send_bound_event("ONVOXIMPLANTCALLEND", portal.call_end_event_data("c1"))
    assert (
        got[1]["data"]["CALL_ID"] == "c1" and got[1]["auth"]["application_token"] == portal.application_token
    )
    assert await client.call("crm.activity.binding.list", {"activityId": 55}) == [
        {"entityTypeId": 2, "entityId": 7}
    ]


async def test_bots_and_ai_engine(portal: FakePortal, session: aiohttp.ClientSession, receiver) -> None:
    server, got = receiver
    portal.app_installed = True  # as after an install: no event is sent before (installation-finish.md)
    client = B24Client.for_portal(
        session, portal.credentials(), client_id=portal.client_id, client_secret=portal.client_secret
    )
    fields = {
        "code": "coach",
        "properties": {"name": "Coach"},
        "eventMode": "webhook",
        "webhookUrl": str(server.make_url("/hook")),
    }
    first = await client.call("imbot.v2.Bot.register", {"fields": fields})
    again = await client.call("imbot.v2.Bot.register", {"fields": fields})
    assert first["bot"]["id"] == again["bot"]["id"]
    await portal.bot_user_says("coach", 1, "привет")
    assert got[0]["event"] == "ONIMBOTV2MESSAGEADD" and got[0]["data"]["message"]["text"] == "привет"
    bot_id = first["bot"]["id"]
    with pytest.raises(B24Error):
        await client.call(
            "imbot.v2.Chat.Message.send",
            {"botId": bot_id, "dialogId": "1", "fields": {"message": "x" * 20001}},
        )
    fetch = await client.call("imbot.v2.Bot.register", {"fields": {"code": "f", "properties": {"name": "F"}}})
    await portal.bot_user_says("f", 1, "one")
    await portal.bot_user_says("f", 1, "two")
    page = await client.call("imbot.v2.Event.get", {"botId": fetch["bot"]["id"], "limit": 1})
    assert page["hasMore"] and page["events"][0]["data"]["message"]["text"] == "one"
    page = await client.call(
        "imbot.v2.Event.get", {"botId": fetch["bot"]["id"], "offset": page["nextOffset"]}
    )
    assert [e["data"]["message"]["text"] for e in page["events"]] == ["two"]

    with pytest.raises(B24Error) as failed:
        await client.call(
            "ai.engine.register",
            {
                "name": "C",
                "code": "c",
                "category": "text",
                "completions_url": str(server.make_url("/ai?k=bad")),
            },
        )
    assert failed.value.code == "ENGINE_REGISTER_ERROR_COMPLETIONS_URL_FAIL"
    good = str(server.make_url("/ai?k=good"))
    await client.call(
        "ai.engine.register", {"name": "C", "code": "c", "category": "text", "completions_url": good}
    )
    with pytest.raises(B24Error) as again_:
        await client.call(
            "ai.engine.register", {"name": "C", "code": "c", "category": "text", "completions_url": good}
        )
    assert again_.value.code == "ENGINE_REGISTER_ERROR_CODE_UNIQUE"  # ai-engine-register.md
    assert [e["code"] for e in await client.call("ai.engine.list")] == ["c"]
