"""Registering the CoPilot engine with the real REST client against the fake portal, which GETs
the completions URL (served by the real endpoint) and needs 200."""

from __future__ import annotations

import aiohttp
import pytest

from callcoach.b24.client import B24Client
from callcoach.copilot.registration import ENGINE_CODE, register_ai_engine, unregister_ai_engine
from tests.copilot.conftest import SECRET, CopilotFactory
from tests.fakes.portal import FakePortal


def rest(portal: FakePortal, session: aiohttp.ClientSession) -> B24Client:
    return B24Client.for_portal(
        session,
        portal.credentials(),
        client_id=portal.client_id,
        client_secret=portal.client_secret,
        oauth_url=portal.oauth_url,
        allow_private_portals=True,  # the fake portal is on 127.0.0.1
    )


async def test_install_registers_and_reinstall_replaces(
    copilot_app: CopilotFactory, portal: FakePortal, session: aiohttp.ClientSession
) -> None:
    app_client, _ = await copilot_app(None)
    public_url = str(app_client.make_url("/")).rstrip("/")
    client = rest(portal, session)

    await register_ai_engine(client, public_url=public_url, secret=SECRET, context_limit=32000)
    engine = portal.ai_engines[ENGINE_CODE]
    assert engine["name"] == "callcoach"
    assert engine["category"] == "text"
    assert engine["completions_url"] == f"{public_url}/ai/completions?secret={SECRET}"
    assert engine["settings"] == {
        "code_alias": "ChatGPT",
        "model_context_type": "token",
        "model_context_limit": 32000,
    }

    # a second install (new secret, new limit) must not trip over the existing registration
    await register_ai_engine(client, public_url=public_url + "/", secret="new secret&x", context_limit=8000)
    engine = portal.ai_engines[ENGINE_CODE]
    assert engine["completions_url"] == f"{public_url}/ai/completions?secret=new%20secret%26x"
    assert engine["settings"]["model_context_limit"] == 8000
    ai_calls = [method for method, _ in portal.calls if method.startswith("ai.")]
    assert ai_calls == [
        "ai.engine.list",
        "ai.engine.register",
        "ai.engine.list",
        "ai.engine.unregister",
        "ai.engine.register",
    ]

    assert await unregister_ai_engine(client) is True
    assert ENGINE_CODE not in portal.ai_engines
    assert await unregister_ai_engine(client) is False


async def test_registration_fails_when_the_endpoint_is_not_served(
    portal: FakePortal, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(Exception, match="completions_url"):
        await register_ai_engine(
            rest(portal, session), public_url="http://127.0.0.1:1", secret=SECRET, context_limit=32000
        )
    assert portal.ai_engines == {}
