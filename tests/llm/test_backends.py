"""The backends through their real clients (google-genai, aiohttp) against fake servers."""

from __future__ import annotations

import pytest

from callcoach.config import ConfigError, Settings
from callcoach.llm.base import ChatMessage, LLMError, LLMRequest
from callcoach.llm.factory import build_llm
from callcoach.llm.gemini import GeminiBackend
from callcoach.llm.openai_compat import OpenAICompatBackend
from tests.fakes.gemini import FakeGemini
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_settings

CONVERSATION = LLMRequest(
    system="Ты помощник менеджера.",
    messages=[
        ChatMessage("user", "Клиент говорит: дорого."),
        ChatMessage("assistant", "Спросите, с чем он сравнивает."),
        ChatMessage("user", "Что ответить дальше?"),
    ],
    max_tokens=200,
    temperature=0.4,
)


def gemini_settings(fake: FakeGemini, **extra: object) -> Settings:
    return make_settings(
        llm="gemini",
        gemini_api_key=fake.api_key,
        gemini_base_url=fake.url,
        **extra,
    )


def openai_settings(fake: FakeOpenAI, **extra: object) -> Settings:
    return make_settings(
        llm="openai",
        openai_base_url=fake.base_url,
        openai_model=fake.model,
        **extra,
    )


async def test_gemini_sends_system_turns_and_limits_and_returns_text(fake_gemini: FakeGemini) -> None:
    fake_gemini.answer = "Предложите сравнить условия."
    backend = GeminiBackend(api_key=fake_gemini.api_key, base_url=fake_gemini.url)
    try:
        answer = await backend.complete(CONVERSATION)
    finally:
        await backend.close()

    assert answer == "Предложите сравнить условия."
    [sent] = fake_gemini.requests
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == fake_gemini.api_key
    assert FakeGemini.system_text(sent.body) == "Ты помощник менеджера."
    assert FakeGemini.turns(sent.body) == [
        ("user", "Клиент говорит: дорого."),
        ("model", "Спросите, с чем он сравнивает."),
        ("user", "Что ответить дальше?"),
    ]
    config = sent.body["generationConfig"]
    assert config["maxOutputTokens"] == 200
    assert config["temperature"] == pytest.approx(0.4)
    # the SDK forwards the nested config with snake_case keys; the API's JSON parser takes both
    assert list(config["thinkingConfig"].values()) == [0]


async def test_gemini_retries_429_then_succeeds_and_reports_latency(fake_gemini: FakeGemini) -> None:
    fake_gemini.fail_status, fake_gemini.fail_times = 429, 2
    latencies: list[tuple[str, float, bool]] = []
    llm = build_llm(gemini_settings(fake_gemini), backoff_s=0.01, on_latency=lambda *a: latencies.append(a))
    assert llm is not None
    try:
        assert await llm.complete(LLMRequest.ask("Привет")) == "Ответ модели"
    finally:
        await llm.close()
    assert len(fake_gemini.requests) == 3
    assert [(name, ok) for name, _, ok in latencies] == [("gemini", True)]


async def test_gemini_server_error_gives_up_after_three_attempts(fake_gemini: FakeGemini) -> None:
    fake_gemini.fail_status, fake_gemini.fail_times = 500, 100
    latencies: list[tuple[str, float, bool]] = []
    llm = build_llm(gemini_settings(fake_gemini), backoff_s=0.01, on_latency=lambda *a: latencies.append(a))
    assert llm is not None
    try:
        with pytest.raises(LLMError) as caught:
            await llm.complete(LLMRequest.ask("Привет"))
    finally:
        await llm.close()
    assert caught.value.code == 500
    assert len(fake_gemini.requests) == 3
    assert [ok for _, _, ok in latencies] == [False]


async def test_gemini_wrong_key_is_not_retried(fake_gemini: FakeGemini) -> None:
    backend = build_llm(
        make_settings(llm="gemini", gemini_api_key="wrong", gemini_base_url=fake_gemini.url),
        backoff_s=0.01,
    )
    assert backend is not None
    try:
        with pytest.raises(LLMError) as caught:
            await backend.complete(LLMRequest.ask("Привет"))
    finally:
        await backend.close()
    assert caught.value.code == 403
    assert not caught.value.retryable
    assert fake_gemini.requests == []  # refused before the body was recorded


async def test_openai_sends_chat_messages_and_limits(fake_openai: FakeOpenAI) -> None:
    fake_openai.api_key = "local-key"
    backend = OpenAICompatBackend(base_url=fake_openai.base_url, model=fake_openai.model, api_key="local-key")
    try:
        answer = await backend.complete(CONVERSATION)
    finally:
        await backend.close()
    assert answer == "Ответ локальной модели"
    [sent] = fake_openai.requests
    assert sent["messages"] == [
        {"role": "system", "content": "Ты помощник менеджера."},
        {"role": "user", "content": "Клиент говорит: дорого."},
        {"role": "assistant", "content": "Спросите, с чем он сравнивает."},
        {"role": "user", "content": "Что ответить дальше?"},
    ]
    assert sent["max_tokens"] == 200
    assert sent["temperature"] == pytest.approx(0.4)


async def test_openai_without_model_uses_the_one_the_server_lists(fake_openai: FakeOpenAI) -> None:
    backend = OpenAICompatBackend(base_url=fake_openai.base_url)
    try:
        await backend.complete(LLMRequest.ask("Привет"))
    finally:
        await backend.close()
    assert fake_openai.requests[0]["model"] == fake_openai.model


async def test_openai_429_with_retry_after_then_success(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail_status, fake_openai.fail_times, fake_openai.retry_after = 429, 2, "0"
    llm = build_llm(openai_settings(fake_openai), backoff_s=5.0)  # Retry-After: 0 overrides the backoff
    assert llm is not None
    try:
        assert await llm.complete(LLMRequest.ask("Привет")) == "Ответ локальной модели"
    finally:
        await llm.close()
    assert len(fake_openai.requests) == 3


async def test_a_backend_slower_than_the_timeout_fails_with_504_once(fake_openai: FakeOpenAI) -> None:
    import asyncio

    fake_openai.gate = asyncio.Event()  # never opened: the server never answers
    llm = build_llm(openai_settings(fake_openai, llm_timeout_s=0.3), backoff_s=0.01)
    assert llm is not None
    try:
        with pytest.raises(LLMError) as caught:
            await llm.complete(LLMRequest.ask("Привет"))
    finally:
        fake_openai.gate.set()
        await llm.close()
    assert caught.value.code == 504
    assert len(fake_openai.requests) == 1


def test_build_llm_none_and_misconfiguration() -> None:
    assert build_llm(make_settings(llm="none")) is None
    with pytest.raises(ConfigError, match="CALLCOACH_GEMINI_API_KEY"):
        build_llm(make_settings(llm="gemini"))
    with pytest.raises(ConfigError, match="CALLCOACH_OPENAI_BASE_URL"):
        build_llm(make_settings(llm="openai"))
