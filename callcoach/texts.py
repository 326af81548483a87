"""Everything callcoach shows a person, in one place: the names of topics and moods, times, the
CRM timeline comment, the manager's tip after a call, the bot's call card, the activity layout
and the transcript for the call card. Pure functions of the findings; Bitrix24 renders BB-code
only, so every text is BB-code and every piece of someone else's text is escaped first.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from callcoach.pipeline.models import Findings, Objection

# one set of words for every text; the report capitalises them for its column heads and legends
TOPIC_NAMES = {
    "sales": "продажа",
    "support": "поддержка",
    "consultation": "консультация",
    "complaint": "жалоба",
    "info_request": "запрос информации",
    "order": "заказ",
    "partnership": "партнёрство",
}
SENTIMENT_NAMES = {"positive": "позитивный", "neutral": "нейтральный", "negative": "негативный"}
SPEAKER_NAMES = {"manager": "Менеджер", "client": "Клиент", "unknown": "Собеседник"}
MARKER = "callcoach:"  # ends every comment, so a retry can find what an earlier attempt posted


def topic_name(label: str) -> str:
    return TOPIC_NAMES.get(label, label)


def sentiment_name(label: str) -> str:
    return SENTIMENT_NAMES.get(label, label)


def clock(seconds: float) -> str:
    s = max(0, int(seconds or 0))
    return f"{s // 60}:{s % 60:02d}"


# --- BB-code ---------------------------------------------------------------------------------------
_FENCE = re.compile(r"```[^\n]*\n(.*?)(?:```|\Z)", re.S)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+|/[^)\s]*)\)")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC_UNDER = re.compile(r"(?<![\w_])_(?=[^\s_])([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^(\s*)(\d+)[.)]\s+(.*)$")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_QUOTE = re.compile(r"^\s{0,3}>\s?(.*)$")


def bb_escape(text: str) -> str:
    """User or client text must not open BB-code tags of its own."""
    return text.replace("[", "(").replace("]", ")")


def markdown_to_bbcode(text: str) -> str:
    """Convert the Markdown an LLM writes into the messenger's BB-code.

    Headings become bold lines, ``**bold**`` → ``[b]``, ``*italic*``/``_italic_`` → ``[i]``,
    ``~~strike~~`` → ``[s]``, code → ``[code]``, ``[text](url)`` → ``[url=url]text[/url]``,
    bullet lists → "• ", quotes → ``>>``, rules → ``------``. Code keeps its content as is.
    """
    codes: list[str] = []

    def stash(content: str) -> str:
        codes.append(content)
        return f"\x00{len(codes) - 1}\x00"

    text = text.replace("\r\n", "\n")
    text = _FENCE.sub(lambda m: stash("[code]" + m.group(1).rstrip("\n") + "[/code]"), text)
    text = _INLINE_CODE.sub(lambda m: stash("[code]" + m.group(1) + "[/code]"), text)
    out_lines = []
    for line in text.split("\n"):
        if _RULE.match(line):
            out_lines.append("------")
            continue
        heading = _HEADING.match(line)
        if heading:
            out_lines.append(f"[b]{_inline(heading.group(1).strip('*_ '))}[/b]")
            continue
        quote = _QUOTE.match(line)
        if quote:
            out_lines.append(">>" + _inline(quote.group(1)))
            continue
        bullet = _BULLET.match(line)
        if bullet:
            indent = "   " * (len(bullet.group(1).replace("\t", "    ")) // 2)
            out_lines.append(f"{indent}• {_inline(bullet.group(2))}")
            continue
        numbered = _NUMBERED.match(line)
        if numbered:
            indent = "   " * (len(numbered.group(1).replace("\t", "    ")) // 2)
            out_lines.append(f"{indent}{numbered.group(2)}. {_inline(numbered.group(3))}")
            continue
        out_lines.append(_inline(line))
    result = "\n".join(out_lines)
    return re.sub("\x00(\\d+)\x00", lambda m: codes[int(m.group(1))], result)


def _inline(line: str) -> str:
    line = _LINK.sub(lambda m: f"[url={m.group(2)}]{m.group(1)}[/url]", line)
    line = _BOLD.sub(lambda m: f"[b]{m.group(2)}[/b]", line)
    line = _STRIKE.sub(lambda m: f"[s]{m.group(1)}[/s]", line)
    line = _ITALIC_STAR.sub(lambda m: f"[i]{m.group(1)}[/i]", line)
    return _ITALIC_UNDER.sub(lambda m: f"[i]{m.group(1)}[/i]", line)


def text_to_bbcode(text: str) -> str:
    """Free text for a Bitrix24 comment or message (an LLM's summary, a recommendation someone
    typed): its own BB-code tags neutralised, then its Markdown (``**Совет:**``) turned into
    BB-code, since Bitrix24 renders BB-code only."""
    return markdown_to_bbcode(bb_escape(text)).strip()


# --- after a call: the timeline comment, the bot's call card, the manager's tip ----------------------
def marker(call_id: str) -> str:
    return f"{MARKER}{call_id}"


def _objection_name(obj: Objection) -> str:
    return bb_escape(obj.category_name or obj.category)


def _header(findings: Findings) -> str:
    """Tone, topic and length, the same words in the comment and the call card."""
    return (
        f"тон: {sentiment_name(findings.sentiment.overall.label)} · тема: {topic_name(findings.topic.label)}"
    )


def _closing_lines(findings: Findings, page_url: str | None) -> list[str]:
    """The manager's share of talk, the summary and the link: the end of comment and call card."""
    lines = []
    if findings.speakers_known:
        lines.append(
            f"Доля речи менеджера: {round(findings.stats.talk_ratio * 100)}% · "
            f"вопросов менеджера: {findings.stats.manager_questions}"
        )
    if findings.summary:  # an LLM may write it, in Markdown
        lines.append(f"Итог: {text_to_bbcode(findings.summary)}")
    if page_url:
        lines.append(f"[url={page_url}]Полный разбор звонка[/url]")
    return lines


def _objection_lines(findings: Findings, *, card: bool) -> list[str]:
    """One line per objection (the card marks it ✓/✗ and adds the manager's reply; the comment
    says whether it was handled), then how to answer it."""
    lines = []
    for n, obj in enumerate(findings.objections, 1):
        if card:
            head = f"{n}. {'✓' if obj.handled else '✗'} [b]{_objection_name(obj)}[/b] ({clock(obj.start)})"
        else:
            status = "отработано" if obj.handled else "[b]не отработано[/b]"
            head = f"{n}. [b]{_objection_name(obj)}[/b] ({clock(obj.start)}, {status})"
        lines.append(f"{head}: [i]«{bb_escape(obj.quote)}»[/i]")
        if card and obj.manager_reply:
            lines.append(f"   Ответ менеджера: «{bb_escape(obj.manager_reply)}»")
        if obj.recommendation:
            lines.append(f"   Как ответить: {text_to_bbcode(obj.recommendation)}")
    return lines


def timeline_comment(findings: Findings, *, call_id: str, page_url: str | None) -> str:
    lines = [f"[b]Анализ звонка[/b] · {_header(findings)} · {clock(findings.duration)}"]
    if findings.objections:
        lines.append(f"[b]Возражения клиента ({len(findings.objections)}):[/b]")
        lines += _objection_lines(findings, card=False)
    else:
        lines.append("Возражений клиента не найдено.")
    if findings.new_category_candidates:
        quotes = "; ".join(f"«{bb_escape(c.quote)}»" for c in findings.new_category_candidates[:3])
        lines.append(f"Новые возражения (вне категорий): {quotes}")
    lines += _closing_lines(findings, page_url)
    lines.append(f"[i]{marker(call_id)}[/i]")
    return "\n".join(lines)


def call_card(findings: Findings, *, call_id: str, crm: str | None, page_url: str | None) -> str:
    """The bot's answer to /call: the comment's content plus what the manager answered."""
    lines = [f"[b]Звонок {bb_escape(call_id)}[/b] · {clock(findings.duration)} · {_header(findings)}"]
    if crm:
        lines.append(f"CRM: {crm}")
    if findings.objections:
        handled = sum(1 for o in findings.objections if o.handled)
        lines.append(f"[b]Возражения ({len(findings.objections)}, отработано {handled}):[/b]")
        lines += _objection_lines(findings, card=True)
    else:
        lines.append("Возражений клиента не найдено.")
    lines += _closing_lines(findings, page_url)
    return "\n".join(lines)


def manager_tip(findings: Findings, *, page_url: str | None) -> str:
    if not findings.objections:
        head = "[b]Разбор звонка:[/b] возражений клиента не найдено."
        return head + (f"\n[url={page_url}]Разбор[/url]" if page_url else "")
    lines = ["[b]Разбор звонка: как отвечать на возражения клиента[/b]"]
    for obj in findings.objections:
        mark = "✓" if obj.handled else "✗"
        lines.append(f"{mark} [b]{_objection_name(obj)}[/b]: «{bb_escape(obj.quote)}»")
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
                "value": f"Тон: {SENTIMENT_NAMES.get(findings.sentiment.overall.label, '')}, "
                f"тема: {topic_name(findings.topic.label)}, "
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
