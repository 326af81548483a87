"""The offline, template-made summary (2-3 sentences); an LLM summary can replace it via a hook."""

from __future__ import annotations

from callcoach.pipeline.models import Findings
from callcoach.texts import SENTIMENT_NAMES, topic_name


def template_summary(f: Findings) -> str:
    if not f.segments:
        return "В записи не найдено речи."
    minutes = f.duration / 60
    length = f"{minutes:.0f} мин" if minutes >= 1 else f"{f.duration:.0f} с"
    topic = topic_name(f.topic.label) if f.topic.label != "unknown" else "тема не определена"
    parts = [f"Звонок ({length}), тема: {topic}; настрой клиента {SENTIMENT_NAMES[_client_mood(f)]}."]
    if f.objections:
        names = []
        for o in f.objections:
            name = o.category_name or o.category
            if name not in names:
                names.append(name)
        handled = sum(o.handled for o in f.objections)
        parts.append(
            f"Возражения клиента: {', '.join(names).lower()}; "
            f"менеджер отработал {handled} из {len(f.objections)}."
        )
    else:
        parts.append("Возражений клиента не найдено.")
    if f.new_category_candidates:
        parts.append(
            f"Есть возражение вне известных категорий: «{_short(f.new_category_candidates[0].quote)}»."
        )
    elif f.speakers_known and f.stats.talk_ratio > 0.7:
        parts.append(f"Менеджер говорил {f.stats.talk_ratio:.0%} времени — клиенту стоит дать больше слова.")
    return " ".join(parts)


def _client_mood(f: Findings) -> str:
    return (f.sentiment.client or f.sentiment.overall).label


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
