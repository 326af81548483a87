"""``callcoach llm`` run in-process against a fake OpenAI-compatible server.

The command runs its own event loop (asyncio.run), so these tests are synchronous and the fake
server runs on a loop in a background thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from callcoach.cli import main
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture
def server_thread() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(answer="Здравствуйте! Чем помочь?")
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(fake.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    yield fake
    asyncio.run_coroutine_threadsafe(fake.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("LLM", "OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.delenv(f"CALLCOACH_{name}", raising=False)


def test_llm_command_prints_the_answer_and_latency(
    server_thread: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CALLCOACH_LLM", "openai")
    monkeypatch.setenv("CALLCOACH_OPENAI_BASE_URL", server_thread.base_url)
    monkeypatch.setenv("CALLCOACH_OPENAI_MODEL", server_thread.model)

    assert main(["llm", "Привет"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "Здравствуйте! Чем помочь?"
    assert "openai local-model:" in err and err.strip().endswith(" s")
    assert server_thread.requests[0]["messages"] == [{"role": "user", "content": "Привет"}]


def test_llm_command_reports_a_failing_backend(
    server_thread: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server_thread.fail_status, server_thread.fail_times = 500, 10
    monkeypatch.setenv("CALLCOACH_LLM", "openai")
    monkeypatch.setenv("CALLCOACH_OPENAI_BASE_URL", server_thread.base_url)
    monkeypatch.setenv("CALLCOACH_OPENAI_MODEL", server_thread.model)

    assert main(["llm", "Привет"]) == 1
    err = capsys.readouterr().err
    assert "openai failed" in err and "500" in err


def test_llm_command_with_no_backend(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CALLCOACH_LLM", "none")
    assert main(["llm"]) == 1
    assert "CALLCOACH_LLM=none" in capsys.readouterr().err


def test_llm_command_with_missing_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CALLCOACH_LLM", "openai")
    assert main(["llm"]) == 2
    assert "CALLCOACH_OPENAI_BASE_URL" in capsys.readouterr().err
