"""The CoPilot completions endpoint served for real, with a fake model behind it and a fake
portal receiving the callbacks."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlencode

import pytest

from callcoach.b24.events import parse_form
from callcoach.copilot.service import NO_LLM_MESSAGE, SHUTDOWN_MESSAGE, url_on_portal
from callcoach.handlers.ai import redact_secrets
from callcoach.llm.base import LLMBackend
from callcoach.llm.factory import build_llm
from tests.copilot.conftest import SECRET, CallbackReceiver, CopilotFactory
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_settings

URL = f"/ai/completions?secret={SECRET}"


def gemini(fake: FakeGemini) -> LLMBackend:
    llm = build_llm(
        make_settings(llm="gemini", gemini_api_key=fake.api_key, gemini_base_url=fake.url),
        backoff_s=0.01,
    )
    assert llm is not None
    return llm


def local(fake: FakeOpenAI) -> LLMBackend:
    llm = build_llm(
        make_settings(llm="openai", openai_base_url=fake.base_url, openai_model=fake.model),
        backoff_s=0.01,
    )
    assert llm is not None
    return llm


async def test_the_answer_is_called_back(
    copilot_app: CopilotFactory, fake_gemini: FakeGemini, receiver: CallbackReceiver
) -> None:
    fake_gemini.answer = "Скажите, что цена включает сервис."
    client, service = await copilot_app(gemini(fake_gemini))

    response = await client.post(URL, json=receiver.completion_body())
    assert response.status == 202
    assert await response.json() == {"result": "OK"}

    await receiver.wait_for(1)
    await service.drain()
    assert receiver.received == [("/callback?request=1", {"result": "Скажите, что цена включает сервис."})]
    [sent] = fake_gemini.requests
    assert FakeGemini.system_text(sent.body) == "Ты помощник менеджера по продажам."
    assert FakeGemini.turns(sent.body) == [
        ("user", "Клиент говорит, что у конкурентов дешевле."),
        ("model", "Уточните, с чем он сравнивает."),
        ("user", "Как ответить клиенту, что дорого?"),
    ]
    assert sent.body["generationConfig"]["maxOutputTokens"] == 500
    assert sent.body["generationConfig"]["temperature"] == pytest.approx(0.3)


async def test_context_is_sent_only_when_collect_context(
    copilot_app: CopilotFactory, fake_openai: FakeOpenAI, receiver: CallbackReceiver
) -> None:
    client, _service = await copilot_app(local(fake_openai))
    response = await client.post(URL, json=receiver.completion_body(collect_context=False, payload_role=None))
    assert response.status == 202
    await receiver.wait_for(1)
    assert fake_openai.requests[0]["messages"] == [
        {"role": "user", "content": "Как ответить клиенту, что дорого?"}
    ]


async def test_backend_failure_goes_to_the_error_callback_after_retries(
    copilot_app: CopilotFactory, fake_gemini: FakeGemini, receiver: CallbackReceiver
) -> None:
    fake_gemini.fail_status, fake_gemini.fail_times = 500, 100
    client, service = await copilot_app(gemini(fake_gemini))

    assert (await client.post(URL, json=receiver.completion_body())).status == 202
    await receiver.wait_for(1)
    await service.drain()
    assert len(fake_gemini.requests) == 3
    assert receiver.on("/callback") == []
    [error] = receiver.on("/error")
    assert error["code"] == 500
    assert error["api_request_completed"] is False
    assert "Gemini" in error["message"]
    assert service.stats.failed == 1


async def test_a_slow_backend_still_gets_202_first(
    copilot_app: CopilotFactory, fake_gemini: FakeGemini, receiver: CallbackReceiver
) -> None:
    fake_gemini.gate = asyncio.Event()  # the model answers only when the test says so
    client, _service = await copilot_app(gemini(fake_gemini))

    response = await client.post(URL, json=receiver.completion_body())
    assert response.status == 202
    assert fake_gemini.answered == 0 and receiver.received == []

    fake_gemini.gate.set()
    await receiver.wait_for(1)
    assert receiver.on("/callback") == [{"result": "Ответ модели"}]


async def test_wrong_or_missing_secret_is_401_and_nothing_runs(
    copilot_app: CopilotFactory, fake_gemini: FakeGemini, receiver: CallbackReceiver
) -> None:
    client, service = await copilot_app(gemini(fake_gemini))
    for url in ("/ai/completions?secret=wrong", "/ai/completions"):
        response = await client.post(url, json=receiver.completion_body())
        assert response.status == 401
    response = await client.post("/ai/completions?secret=wrong", data=b"not json")
    assert response.status == 401  # the secret is checked before the body
    await service.drain()
    assert fake_gemini.requests == [] and receiver.received == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b"",
        {"drop": "callbackUrl"},
        {"drop": "prompt"},
        {"set": ("prompt", "")},
        {"set": ("temperature", "горячо")},
        {"set": ("context", "не список")},
    ],
)
async def test_invalid_body_is_400(
    copilot_app: CopilotFactory, fake_gemini: FakeGemini, receiver: CallbackReceiver, body: object
) -> None:
    client, service = await copilot_app(gemini(fake_gemini))
    if isinstance(body, bytes):
        response = await client.post(URL, data=body, headers={"Content-Type": "application/json"})
    else:
        assert isinstance(body, dict)
        request = receiver.completion_body()
        if "drop" in body:
            del request[body["drop"]]
        else:
            key, value = body["set"]
            request[key] = value
        response = await client.post(URL, json=request)
    assert response.status == 400
    answer = await response.json()
    assert answer["error"] == "invalid_request"
    assert "TOKEN-NEVER-LOGGED" not in str(answer)
    await service.drain()
    assert fake_gemini.requests == [] and receiver.received == []


@pytest.mark.parametrize(
    ("field", "url"),
    [
        ("callbackUrl", "https://evil.example.com/callback"),
        ("errorCallbackUrl", "http://127.0.0.1:1/error"),  # same host, other port
        ("callbackUrl", "http://{host}@evil.example.com/callback"),
        ("callbackUrl", "file:///etc/passwd"),
    ],
)
async def test_a_callback_off_the_portal_is_refused(
    copilot_app: CopilotFactory, fake_gemini: FakeGemini, receiver: CallbackReceiver, field: str, url: str
) -> None:
    client, service = await copilot_app(gemini(fake_gemini))
    body = receiver.completion_body(**{field: url.format(host=receiver.host)})
    response = await client.post(URL, json=body)
    assert response.status == 400
    assert field in (await response.json())["error_description"]
    await service.drain()
    assert fake_gemini.requests == [] and receiver.received == []


async def test_twenty_concurrent_requests_each_called_back_exactly_once(
    copilot_app: CopilotFactory, fake_openai: FakeOpenAI, receiver: CallbackReceiver
) -> None:
    fake_openai.answer = lambda body: "ответ на " + body["messages"][-1]["content"]
    fake_openai.fail_status, fake_openai.fail_times = 429, 5  # some of them go through a retry
    client, service = await copilot_app(local(fake_openai))

    async def ask(i: int) -> int:
        body = receiver.completion_body(str(i), prompt=f"вопрос {i}", collect_context=False)
        response = await client.post(URL, json=body)
        return response.status

    statuses = await asyncio.gather(*(ask(i) for i in range(20)))
    assert statuses == [202] * 20
    await receiver.wait_for(20)
    await service.drain()
    assert len(receiver.received) == 20
    by_request = {path.split("request=")[1]: body for path, body in receiver.received}
    assert by_request == {str(i): {"result": f"ответ на вопрос {i}"} for i in range(20)}
    assert receiver.on("/error") == []


async def test_without_an_llm_the_error_callback_says_so(
    copilot_app: CopilotFactory, receiver: CallbackReceiver
) -> None:
    client, _service = await copilot_app(None)
    assert (await client.post(URL, json=receiver.completion_body())).status == 202
    await receiver.wait_for(1)
    assert receiver.received == [
        ("/error?request=1", {"message": NO_LLM_MESSAGE, "code": 503, "api_request_completed": False})
    ]


async def test_work_past_its_ttl_is_dropped_without_a_callback(
    copilot_app: CopilotFactory, fake_gemini: FakeGemini, receiver: CallbackReceiver
) -> None:
    fake_gemini.gate = asyncio.Event()  # never answers in time
    client, service = await copilot_app(gemini(fake_gemini))
    assert (await client.post(URL, json=receiver.completion_body(ttl=0.3))).status == 202
    await service.drain()
    fake_gemini.gate.set()
    assert receiver.received == []
    assert service.stats.expired == 1


async def test_form_encoded_body_is_accepted(
    copilot_app: CopilotFactory, fake_openai: FakeOpenAI, receiver: CallbackReceiver
) -> None:
    client, _service = await copilot_app(local(fake_openai))
    form = {
        "prompt": "Вопрос",
        "payload_role": "Роль",
        "context[0][role]": "user",
        "context[0][content]": "Первое",
        "context[1][role]": "assistant",
        "context[1][content]": "Второе",
        "collect_context": "1",
        "max_tokens": "",
        "temperature": "0.5",
        "auth[access_token]": "TOKEN-NEVER-LOGGED",
        "ttl": "60",
        "callbackUrl": f"{receiver.url}/callback",
        "errorCallbackUrl": f"{receiver.url}/error",
    }
    response = await client.post(URL, data=form)
    assert response.status == 202
    await receiver.wait_for(1)
    sent = fake_openai.requests[0]
    assert [m["content"] for m in sent["messages"]] == ["Роль", "Первое", "Второе", "Вопрос"]
    assert "max_tokens" not in sent and sent["temperature"] == 0.5


async def test_callback_is_retried_and_delivered_once(
    copilot_app: CopilotFactory, fake_openai: FakeOpenAI, receiver: CallbackReceiver
) -> None:
    receiver.fail_times = 2
    client, service = await copilot_app(local(fake_openai))
    assert (await client.post(URL, json=receiver.completion_body())).status == 202
    await receiver.wait_for(1)
    await service.drain()
    assert receiver.received == [("/callback?request=1", {"result": "Ответ локальной модели"})]


async def test_shutdown_sends_the_error_callback_for_running_work(
    copilot_app: CopilotFactory, fake_openai: FakeOpenAI, receiver: CallbackReceiver
) -> None:
    fake_openai.gate = asyncio.Event()
    client, service = await copilot_app(local(fake_openai))
    assert (await client.post(URL, json=receiver.completion_body())).status == 202
    await asyncio.wait_for(fake_openai.received.wait(), 10)  # the model has the request
    await service.close()
    fake_openai.gate.set()
    assert receiver.received == [
        ("/error?request=1", {"message": SHUTDOWN_MESSAGE, "code": 503, "api_request_completed": False})
    ]
    assert (await client.post(URL, json=receiver.completion_body())).status == 503


async def test_probe_get_is_200(copilot_app: CopilotFactory) -> None:
    client, _ = await copilot_app(None)
    for url in (URL, "/ai/completions"):
        response = await client.get(url)
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


async def test_portal_tokens_never_reach_the_log(
    copilot_app: CopilotFactory,
    fake_gemini: FakeGemini,
    receiver: CallbackReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_gemini.fail_times = 1
    client, service = await copilot_app(gemini(fake_gemini))
    assert (await client.post(URL, json=receiver.completion_body())).status == 202
    assert (await client.post(URL, json=receiver.completion_body(callbackUrl="https://evil/"))).status == 400
    await receiver.wait_for(1)
    await service.drain()
    assert caplog.records
    assert "TOKEN-NEVER-LOGGED" not in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("url", "domain", "ok"),
    [
        ("https://example.bitrix24.ru/rest/ai/cb?x=1", "example.bitrix24.ru", True),
        ("https://EXAMPLE.bitrix24.ru/cb", "example.bitrix24.ru", True),
        ("https://example.bitrix24.ru:8443/cb", "example.bitrix24.ru", True),
        ("https://example.bitrix24.ru/cb", "https://example.bitrix24.ru/", True),
        ("https://example.bitrix24.ru.evil.com/cb", "example.bitrix24.ru", False),
        ("https://example.bitrix24.ru@evil.com/cb", "example.bitrix24.ru", False),
        ("ftp://example.bitrix24.ru/cb", "example.bitrix24.ru", False),
        ("http://127.0.0.1:8080/cb", "127.0.0.1:8080", True),
        ("http://127.0.0.1:8081/cb", "127.0.0.1:8080", False),
        ("http://127.0.0.1:99999/cb", "127.0.0.1:8080", False),
        ("", "example.bitrix24.ru", False),
    ],
)
def test_url_on_portal(url: str, domain: str, ok: bool) -> None:
    assert url_on_portal(url, domain) is ok


def test_form_bodies_unflatten_and_secret_redaction() -> None:
    body = urlencode(
        [("context[1][content]", "b"), ("context[0][content]", "a"), ("tags[]", "x"), ("tags[]", "y")]
    )
    assert parse_form(body.encode()) == {"context": [{"content": "a"}, {"content": "b"}], "tags": ["x", "y"]}
    line = '"POST /ai/completions?secret=abc-123&x=1 HTTP/1.1" 202'
    assert redact_secrets(line) == '"POST /ai/completions?secret=***&x=1 HTTP/1.1" 202'
