"""What callcoach writes back: the timeline comment (BB-code), the compact activity layout,
the transcript for the call card and the manager's tip message. Pure functions of the findings."""

from __future__ import annotations

from typing import Any

from callcoach.bot.formatting import text_to_bbcode
from callcoach.pipeline.models import Findings

SENTIMENT_RU = {"positive": "позитивный", "neutral": "нейтральный", "negative": "негативный"}
TOPIC_RU = {
    "sales": "продажа",
    "support": "поддержка",
    "consultation": "консультация",
    "complaint": "жалоба",
    "info_request": "запрос информации",
    "order": "заказ",
    "partnership": "партнёрство",
}
MARKER = "callcoach:"  # ends every comment, so a retry can find what an earlier attempt posted


def clock(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 60}:{s % 60:02d}"


def bb_escape(text: str) -> str:
    # Client speech must not open BB-code tags of its own.
    return text.replace("[", "(").replace("]", ")")


def marker(call_id: str) -> str:
    return f"{MARKER}{call_id}"


def timeline_comment(findings: Findings, *, call_id: str, page_url: str | None) -> str:
    sentiment = findings.sentiment.overall.label
    lines = [
        f"[b]Анализ звонка[/b] · тон: {SENTIMENT_RU.get(sentiment, sentiment)} · "
        f"тема: {TOPIC_RU.get(findings.topic.label, findings.topic.label)} · {clock(findings.duration)}"
    ]
    if findings.objections:
        lines.append(f"[b]Возражения клиента ({len(findings.objections)}):[/b]")
        for n, obj in enumerate(findings.objections, 1):
            status = "отработано" if obj.handled else "[b]не отработано[/b]"
            lines.append(
                f"{n}. [b]{bb_escape(obj.category_name or obj.category)}[/b] ({clock(obj.start)}, {status}): "
                f"[i]«{bb_escape(obj.quote)}»[/i]"
            )
            if obj.recommendation:
                lines.append(f"   Как ответить: {text_to_bbcode(obj.recommendation)}")
    else:
        lines.append("Возражений клиента не найдено.")
    if findings.new_category_candidates:
        quotes = "; ".join(f"«{bb_escape(c.quote)}»" for c in findings.new_category_candidates[:3])
        lines.append(f"Новые возражения (вне категорий): {quotes}")
    stats = findings.stats
    if findings.speakers_known:
        share = round(stats.talk_ratio * 100)
        lines.append(f"Доля речи менеджера: {share}% · вопросов менеджера: {stats.manager_questions}")
    if findings.summary:  # an LLM may write it, in Markdown
        lines.append(f"Итог: {text_to_bbcode(findings.summary)}")
    if page_url:
        lines.append(f"[url={page_url}]Полный разбор звонка[/url]")
    lines.append(f"[i]{marker(call_id)}[/i]")
    return "\n".join(lines)


def manager_tip(findings: Findings, *, page_url: str | None) -> str:
    if not findings.objections:
        head = "[b]Разбор звонка:[/b] возражений клиента не найдено."
        return head + (f"\n[url={page_url}]Разбор[/url]" if page_url else "")
    lines = ["[b]Разбор звонка: как отвечать на возражения клиента[/b]"]
    for obj in findings.objections:
        mark = "✓" if obj.handled else "✗"
        lines.append(
            f"{mark} [b]{bb_escape(obj.category_name or obj.category)}[/b]: «{bb_escape(obj.quote)}»"
        )
        if obj.recommendation:
            lines.append(f"→ {text_to_bbcode(obj.recommendation)}")
    if page_url:
        lines.append(f"[url={page_url}]Полный разбор[/url]")
    return "\n".join(lines)


def layout_blocks(findings: Findings, *, page_url: str | None) -> dict[str, Any]:
    """A compact layout for crm.activity.layout.blocks.set (at most 20 blocks)."""
    blocks: dict[str, Any] = {
        "summary": {
            "type": "text",
            "properties": {
                "value": f"Тон: {SENTIMENT_RU.get(findings.sentiment.overall.label, '')}, "
                f"тема: {TOPIC_RU.get(findings.topic.label, findings.topic.label)}, "
                f"возражений: {len(findings.objections)}",
            },
        }
    }
    for n, obj in enumerate(findings.objections[:15], 1):
        blocks[f"objection{n}"] = {
            "type": "withTitle",
            "properties": {
                "title": obj.category_name or obj.category,
                "block": {"type": "text", "properties": {"value": f"«{obj.quote}» ({clock(obj.start)})"}},
            },
        }
    if page_url:
        blocks["link"] = {
            "type": "link",
            "properties": {"text": "Полный разбор", "action": {"type": "redirect", "uri": page_url}},
        }
    return {"blocks": blocks}


def transcription_messages(findings: Findings) -> list[dict[str, Any]]:
    side = {"manager": "User", "client": "Client"}
    return [
        {
            "SIDE": side.get(seg.speaker, "Client"),
            "START_TIME": int(seg.start),
            "STOP_TIME": max(int(seg.end), int(seg.start) + 1),
            "MESSAGE": seg.text,
        }
        for seg in findings.segments
        if seg.text.strip()
    ]
