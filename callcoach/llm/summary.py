"""The LLM-written call summary and the LLM's objections: the call flow's hooks when an LLM is
configured (CALLCOACH_LLM; CALLCOACH_ANALYSIS=llm for the objections)."""

from __future__ import annotations

from callcoach.llm.analysis import refine_findings
from callcoach.llm.base import LLMBackend, LLMRequest
from callcoach.pipeline.models import Category, Findings

SUMMARY_PROMPT = (
    "Кратко, в двух-трёх предложениях, изложи суть звонка: чего хотел клиент, какие возражения "
    "прозвучали и чем закончился разговор.\n\n"
)
SUMMARY_SYSTEM = "Ты помощник руководителя отдела продаж. Пиши по-русски, без Markdown."


class LLMHooks:
    """``summarize`` and ``refine_objections`` bound to one backend."""

    def __init__(self, llm: LLMBackend) -> None:
        self.llm = llm

    async def summarize(self, findings: Findings) -> str | None:
        request = LLMRequest.ask(
            SUMMARY_PROMPT + findings.transcript, system=SUMMARY_SYSTEM, max_tokens=300, temperature=0.2
        )
        return (await self.llm.complete(request)).strip() or None

    async def refine_objections(self, findings: Findings, categories: list[Category]) -> Findings:
        return await refine_findings(self.llm, findings, categories)
