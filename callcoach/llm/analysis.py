"""Objections found by the configured LLM, checked against the transcript.

``CALLCOACH_ANALYSIS`` = ``auto`` (the LLM when ``CALLCOACH_LLM`` names one), ``embeddings`` (the
offline models only) or ``llm``. The offline pipeline always runs first; this stage then sends the
transcript (numbered turns with speakers and times), the portal's categories (standard and custom,
with their descriptions) and the answer's JSON schema to the model, and replaces the call's
objections and new-category candidates with what it found.

Nothing the model says is taken on trust: every category must be one of the portal's (or
``novel``), every turn number must exist, every quote must be found in that turn. An answer that
breaks any of these, or a failed request, leaves the call with the embedding result, and says so
in the log. A transcript too long for the model's window is sent in overlapping chunks.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from callcoach.config import ConfigError, Settings
from callcoach.llm.base import LLMBackend, LLMError, LLMRequest
from callcoach.llm.budget import MESSAGE_OVERHEAD_TOKENS, estimate_tokens, input_budget
from callcoach.pipeline.models import Category, Findings, NewCategoryCandidate, Objection, Segment
from callcoach.pipeline.objections import manager_reply
from callcoach.pipeline.summary import template_summary
from callcoach.texts import SPEAKER_NAMES

log = logging.getLogger(__name__)

NOVEL = "novel"
ANSWER_TOKENS = 2000  # a call's objections in JSON fit easily; reserved out of the window
OVERLAP_TURNS = 2  # chunks share a few turns so an objection and its context stay together

SYSTEM = (
    "Ты опытный руководитель отдела продаж и разбираешь записи звонков менеджеров. Найди в звонке "
    "все возражения клиента. Возражение — это реплика клиента, которая мешает сделке: сомнение, "
    "несогласие, отказ, отговорка, сказанные прямо или косвенно. Нейтральный вопрос о цене, условиях "
    "или конкуренте, упоминание нынешнего поставщика без недовольства, согласие, просьба прислать "
    "материалы — это НЕ возражения. Реплики менеджера не бывают возражениями. Каждую категорию "
    "указывай не больше одного раза (самую ясную реплику). Если возражение не подходит ни к одной "
    "категории, укажи категорию «novel» и коротко назови его в new_category_name. Цитата — точные "
    "слова клиента из реплики с указанным номером, без изменений. handled — ответил ли менеджер "
    "по существу (вопрос, аргумент, предложение), а не просто попрощался. Если возражений нет, "
    "верни пустой список."
)


class InvalidAnswer(ValueError):
    """The model's answer does not hold up against the transcript or the categories."""


@dataclass(frozen=True)
class Found:
    category: str
    turn: int
    quote: str
    handled: bool
    confidence: float
    new_category_name: str = ""


def analysis_uses_llm(settings: Settings) -> bool:
    """Whether calls are analysed by the LLM (``CALLCOACH_ANALYSIS``, see the module doc)."""
    if settings.analysis == "embeddings":
        return False
    if settings.analysis == "llm" and settings.llm == "none":
        raise ConfigError("CALLCOACH_ANALYSIS=llm: set CALLCOACH_LLM to gemini or openai as well")
    return settings.llm != "none"


def answer_schema(categories: Sequence[Category]) -> dict[str, Any]:
    """The JSON the model must answer with. Kept to the subset both Gemini's ``response_schema``
    and OpenAI's strict ``json_schema`` accept (every property required, no extras)."""
    item = {
        "type": "object",
        "properties": {
            "turn": {"type": "integer", "description": "номер реплики клиента"},
            "category": {"type": "string", "enum": [*(c.code for c in categories), NOVEL]},
            "quote": {"type": "string", "description": "точные слова клиента из этой реплики"},
            "handled": {"type": "boolean"},
            "confidence": {"type": "number"},
            "new_category_name": {"type": "string", "description": "для novel; иначе пусто"},
        },
        "required": ["turn", "category", "quote", "handled", "confidence", "new_category_name"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"objections": {"type": "array", "items": item}},
        "required": ["objections"],
        "additionalProperties": False,
    }


def _clock(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 60:02d}:{s % 60:02d}"


def transcript_lines(segments: Sequence[Segment]) -> list[str]:
    return [f"[{i}] {_clock(s.start)} {SPEAKER_NAMES[s.speaker]}: {s.text}" for i, s in enumerate(segments)]


def _categories_text(categories: Sequence[Category]) -> str:
    lines = []
    for c in categories:
        about = c.description or (("; ".join(c.examples[:3])) if c.examples else "")
        lines.append(f"- {c.code} — {c.name}" + (f": {about}" if about else ""))
    lines.append(f"- {NOVEL} — возражение, которое не подходит ни к одной категории выше")
    return "\n".join(lines)


def _prompt(categories: Sequence[Category], lines: Sequence[str], roles_reliable: bool) -> str:
    roles = (
        ""
        if roles_reliable
        else "\nРоли собеседников определены по голосу и могут быть перепутаны: решай по смыслу реплики.\n"
    )
    return (
        f"Категории возражений:\n{_categories_text(categories)}\n{roles}\n"
        "Звонок (номер реплики, время от начала, кто говорит):\n" + "\n".join(lines)
    )


def chunks(
    categories: Sequence[Category], segments: Sequence[Segment], context_limit: int, roles_reliable: bool
) -> list[range]:
    """Turn ranges whose prompt fits the model's window with room for the answer."""
    lines = transcript_lines(segments)
    budget = input_budget(context_limit, ANSWER_TOKENS)
    fixed = estimate_tokens(SYSTEM) + estimate_tokens(_prompt(categories, [], roles_reliable))
    room = budget - fixed - 2 * MESSAGE_OVERHEAD_TOKENS
    if room <= 0:
        raise LLMError("the model's context window cannot hold the categories and one turn", code=413)
    out: list[range] = []
    start = 0
    while start < len(lines):
        end, used = start, 0
        while end < len(lines) and used + estimate_tokens(lines[end]) + 1 <= room:
            used += estimate_tokens(lines[end]) + 1
            end += 1
        if end == start:  # one turn longer than the window: send it alone, the budget trims it
            end = start + 1
        out.append(range(start, end))
        if end >= len(lines):
            break
        start = max(start + 1, end - OVERLAP_TURNS)
    return out


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-zа-яё0-9]+", text.lower().replace("ё", "е")))


def parse_answer(
    text: str,
    categories: Sequence[Category],
    segments: Sequence[Segment],
    allowed: range,
    *,
    roles_reliable: bool,
) -> list[Found]:
    """The model's JSON, checked; raises ``InvalidAnswer`` naming the first problem."""
    try:
        data = json.loads(_strip_fence(text))
    except ValueError as exc:
        raise InvalidAnswer(f"not JSON: {exc}") from None
    items = data.get("objections") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise InvalidAnswer("no 'objections' list")
    codes = {c.code for c in categories} | {NOVEL}
    out: list[Found] = []
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise InvalidAnswer(f"objection #{n} is not an object")
        category = item.get("category")
        if category not in codes:
            raise InvalidAnswer(f"objection #{n}: unknown category {category!r}")
        turn = item.get("turn")
        if not isinstance(turn, int) or isinstance(turn, bool) or turn not in allowed:
            raise InvalidAnswer(f"objection #{n}: turn {turn!r} is not in the transcript sent")
        seg = segments[turn]
        if roles_reliable and seg.speaker == "manager":
            raise InvalidAnswer(f"objection #{n}: turn {turn} is the manager's")
        quote = str(item.get("quote") or "").strip()
        if not _norm(quote) or _norm(quote) not in _norm(seg.text):
            raise InvalidAnswer(f"objection #{n}: quote {quote!r} is not in turn {turn}")
        confidence = item.get("confidence", 0.8)
        confidence = float(confidence) if isinstance(confidence, int | float) else 0.8
        out.append(
            Found(
                category=str(category),
                turn=turn,
                quote=quote,
                handled=bool(item.get("handled")),
                confidence=min(1.0, max(0.0, confidence)),
                new_category_name=str(item.get("new_category_name") or ""),
            )
        )
    return out


def _strip_fence(text: str) -> str:
    """Some OpenAI-compatible servers wrap JSON in a Markdown fence despite the schema."""
    text = text.strip()
    if text.startswith("```"):
        text = re.sub(r"^```[a-zA-Z]*\s*|\s*```$", "", text)
    return text


async def llm_objections(
    llm: LLMBackend,
    segments: Sequence[Segment],
    categories: Sequence[Category],
    *,
    roles_reliable: bool = True,
) -> list[Found]:
    """Every chunk asked in turn; each category kept once, at its first turn. Raises ``LLMError``
    or ``InvalidAnswer``."""
    found: dict[str, Found] = {}
    schema = answer_schema(categories)
    lines = transcript_lines(segments)
    for part in chunks(categories, segments, llm.context_limit, roles_reliable):
        request = LLMRequest.ask(
            _prompt(categories, lines[part.start : part.stop], roles_reliable),
            system=SYSTEM,
            max_tokens=ANSWER_TOKENS,
            temperature=0.0,
            response_schema=schema,
        )
        answer = await llm.complete(request)
        for f in parse_answer(answer, categories, segments, part, roles_reliable=roles_reliable):
            key = f.category if f.category != NOVEL else f"{NOVEL}:{f.turn}"
            if key not in found or f.turn < found[key].turn:
                found[key] = f
    return sorted(found.values(), key=lambda f: f.turn)


async def refine_findings(llm: LLMBackend, findings: Findings, categories: Sequence[Category]) -> Findings:
    """``findings`` with the LLM's objections, or unchanged (logged) when the LLM fails or its
    answer does not hold up."""
    segments = findings.segments
    if not segments or not categories:
        return findings
    roles_reliable = findings.channels == "stereo" and findings.speakers_known
    try:
        found = await llm_objections(llm, segments, categories, roles_reliable=roles_reliable)
    except (LLMError, InvalidAnswer) as exc:
        log.warning(
            "LLM analysis of %s failed, keeping the embedding result: %s", findings.file or "a call", exc
        )
        return findings
    by_code = {c.code: c for c in categories}
    objections: list[Objection] = []
    candidates: list[NewCategoryCandidate] = []
    for f in found:
        seg = segments[f.turn]
        if f.category == NOVEL:
            candidates.append(NewCategoryCandidate(quote=seg.text, start=seg.start, confidence=f.confidence))
            continue
        c = by_code[f.category]
        reply = manager_reply(segments, f.turn)
        objections.append(
            Objection(
                category=c.code,
                category_name=c.name,
                quote=f.quote,
                start=seg.start,
                end=seg.end,
                confidence=f.confidence,
                recommendation=c.recommendation,
                handled=f.handled,
                manager_reply=reply,
            )
        )
    out = findings.model_copy(
        update={
            "objections": objections,
            "new_category_candidates": candidates,
            "models": {**findings.models, "objections": f"llm/{llm.name}"},
        }
    )
    out.summary = template_summary(out)
    return out


class BlockingRefiner:
    """``refine_findings`` for synchronous callers (``callcoach analyze``, bench/accuracy.py): the
    backend lives on one private event loop for the whole run."""

    def __init__(self, settings: Settings) -> None:
        import asyncio

        from callcoach.llm.factory import build_llm

        self._loop = asyncio.new_event_loop()
        llm = build_llm(settings)
        if llm is None:
            self._loop.close()
            raise ConfigError("CALLCOACH_LLM: no LLM is configured")
        self.llm = llm

    def __call__(self, findings: Findings, categories: Sequence[Category]) -> Findings:
        return self._loop.run_until_complete(refine_findings(self.llm, findings, categories))

    def close(self) -> None:
        self._loop.run_until_complete(self.llm.close())
        self._loop.close()
