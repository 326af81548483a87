"""Cutting a request to the model's context window."""

from __future__ import annotations

from callcoach.llm.base import ChatMessage, LLMRequest
from callcoach.llm.budget import CUT_MARK, estimate_request_tokens, fit_to_context, input_budget
from callcoach.llm.openai_compat import OpenAICompatBackend
from callcoach.llm.resilient import ResilientLLM
from tests.fakes.openai_server import FakeOpenAI


def turn(i: int, size: int = 300) -> ChatMessage:
    return ChatMessage("user" if i % 2 == 0 else "assistant", f"реплика {i} " + "а" * size)


def test_a_request_that_fits_is_left_alone() -> None:
    request = LLMRequest("Система", [turn(0), turn(1), ChatMessage("user", "Вопрос")], max_tokens=100)
    assert fit_to_context(request, 4000) is request


def test_oldest_context_goes_first_system_and_question_stay() -> None:
    history = [turn(i) for i in range(20)]
    request = LLMRequest("Система", [*history, ChatMessage("user", "Вопрос")], max_tokens=200)
    fitted = fit_to_context(request, 1000)

    assert fitted.system == "Система"
    assert fitted.messages[-1].content == "Вопрос"
    kept = fitted.messages[:-1]
    assert 0 < len(kept) < 20
    assert kept == history[-len(kept) :]  # the newest turns, contiguous, in order
    assert estimate_request_tokens(fitted) <= input_budget(1000, 200)


def test_a_question_too_long_alone_loses_its_middle() -> None:
    question = "НАЧАЛО " + "б" * 30000 + " КОНЕЦ"
    request = LLMRequest("Система", [turn(0), ChatMessage("user", question)], max_tokens=100)
    fitted = fit_to_context(request, 1000)

    assert fitted.system == "Система"
    [only] = fitted.messages
    assert only.content.startswith("НАЧАЛО ") and only.content.endswith(" КОНЕЦ")
    assert CUT_MARK in only.content
    assert estimate_request_tokens(fitted) <= input_budget(1000, 100)


def test_a_huge_system_instruction_is_cut_too() -> None:
    request = LLMRequest("с" * 30000, [ChatMessage("user", "в" * 30000)])
    fitted = fit_to_context(request, 2000)
    assert fitted.system is not None and CUT_MARK in fitted.system
    assert CUT_MARK in fitted.messages[-1].content
    assert estimate_request_tokens(fitted) <= input_budget(2000, None)


def test_greedy_max_tokens_cannot_take_more_than_half_the_window() -> None:
    assert input_budget(1000, 10_000) == 500


async def test_the_model_receives_the_cut_request(fake_openai: FakeOpenAI) -> None:
    history = [turn(i) for i in range(30)]
    backend = ResilientLLM(
        OpenAICompatBackend(base_url=fake_openai.base_url, model=fake_openai.model, context_limit=1200)
    )
    try:
        request = LLMRequest("Система", [*history, ChatMessage("user", "Вопрос")], max_tokens=100)
        await backend.complete(request)
    finally:
        await backend.close()
    sent = fake_openai.requests[0]["messages"]
    assert sent[0] == {"role": "system", "content": "Система"}
    assert sent[-1] == {"role": "user", "content": "Вопрос"}
    contents = [m["content"] for m in sent[1:-1]]
    assert contents and contents[-1] == history[-1].content
    assert history[0].content not in contents
