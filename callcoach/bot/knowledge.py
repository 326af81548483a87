"""The objection knowledge base as the bot uses it: classifying what a client said, and the
grounding text given to the LLM."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from callcoach.pipeline.models import Category, Findings
from callcoach.storage import Job
from callcoach.texts import bb_escape

log = logging.getLogger(__name__)

_WORD = re.compile(r"[a-zа-яё0-9]+", re.I)
# "Клиент говорит, что ..." is how managers ask the bot about what a client said: the reporting
# clause is the manager's voice, and the classifier would read it as ordinary talk.
_REPORTED = re.compile(
    r"^(клиент\w*|он|она|они|заказчик\w*|покупател\w*)\s+(говор\w*|сказал\w*|заявля\w*|заявил\w*|"
    r"ответил\w*|пиш\w*|жалу\w*)\s*[,:—-]?\s*(что\s+)?",
    re.IGNORECASE,
)


def classify(analyzer: Any, text: str, categories: list[Category]) -> list[tuple[Category, float]]:
    """The pipeline's classifier when it can answer; word overlap when it cannot (models still
    loading or failed), so that /tips keeps working either way."""
    text = _REPORTED.sub("", text.strip(), count=1) or text
    if analyzer is not None and hasattr(analyzer, "classify_text"):
        try:
            ranked = analyzer.classify_text(text, categories)
            if ranked:
                return list(ranked)
        except Exception as exc:  # a model that is not loaded yet must not break the chat
            log.warning("classifier unavailable, using word overlap: %s", exc)
    return overlap_rank(text, categories)


def _stems(text: str) -> set[str]:
    return {w[:5] for w in _WORD.findall(text.lower()) if len(w) > 2}


def overlap_rank(text: str, categories: Sequence[Category]) -> list[tuple[Category, float]]:
    query = _stems(text)
    scored = []
    for c in categories:
        vocab = _stems(" ".join([c.name, c.description, *c.examples]))
        score = len(query & vocab) / max(1, len(query))
        scored.append((c, round(min(1.0, score), 3)))
    return sorted(scored, key=lambda p: -p[1])


def find_category(query: str, categories: Sequence[Category]) -> Category | None:
    """A category named by code or (part of) its name."""
    q = query.strip().lower()
    if not q:
        return None
    for c in categories:
        if q == c.code or q == c.name.lower():
            return c
    matches = [c for c in categories if q in c.name.lower() and len(q) >= 4]
    return matches[0] if len(matches) == 1 else None


def render_tip(category: Category, *, confidence: float | None = None) -> str:
    head = f"[b]{bb_escape(category.name)}[/b]"
    if confidence is not None:
        head += f" (совпадение {round(confidence * 100)}%)"
    lines = [head]
    if category.recommendation:
        lines.append(f"Как ответить: {bb_escape(category.recommendation)}")
    else:
        lines.append("Рекомендация для этой категории пока не задана.")
    if category.examples:
        lines.append("Так говорят клиенты: " + "; ".join(f"«{bb_escape(e)}»" for e in category.examples[:3]))
    return "\n".join(lines)


def knowledge_base(categories: Sequence[Category]) -> str:
    """The categories and their recommendations, as plain text for the LLM's system prompt."""
    lines = []
    for c in categories:
        lines.append(f"- {c.name} ({c.code}): {c.description}")
        if c.examples:
            lines.append("  Примеры: " + "; ".join(c.examples[:4]))
        if c.recommendation:
            lines.append(f"  Как отвечать: {c.recommendation}")
    return "\n".join(lines)


def recent_calls_digest(jobs: Sequence[Job], *, limit: int = 5) -> str:
    """The asker's own recent calls in a few lines (objections met and whether handled)."""
    lines = []
    for job in jobs[:limit]:
        if not job.findings:
            continue
        try:
            findings = Findings.model_validate(job.findings)
        except Exception:  # an old or foreign findings shape: skip, do not fail the answer
            continue
        objs = "; ".join(
            f"{o.category_name or o.category} «{o.quote}» ({'отработано' if o.handled else 'не отработано'})"
            for o in findings.objections[:5]
        )
        lines.append(f"- звонок {job.call_id}: {objs or 'без возражений'}")
    return "\n".join(lines)
