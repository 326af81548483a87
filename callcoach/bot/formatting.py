"""Text for the Bitrix24 messenger: Markdown (what LLMs write) to BB-code, and long texts split
into messages the portal accepts (at most 20,000 characters each).

The messenger renders BB-code only; raw Markdown would show as literal asterisks and hashes.
"""

from __future__ import annotations

import re

MAX_MESSAGE = 20_000
CUT_NOTE = "\n[i]… ответ сокращён[/i]"

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


def split_message(text: str, limit: int = MAX_MESSAGE, *, max_parts: int = 5) -> list[str]:
    """Split at paragraph, then line, then word boundaries into parts of at most ``limit``.

    More than ``max_parts`` parts would flood the chat: the rest is cut and the last part ends
    with a note saying so (still within ``limit``).
    """
    text = text.strip()
    if not text:
        return []
    parts: list[str] = []
    rest = text
    while rest:
        if len(rest) <= limit:
            parts.append(rest)
            break
        if len(parts) == max_parts - 1:
            room = limit - len(CUT_NOTE)
            parts.append(_head(rest, room).rstrip() + CUT_NOTE)
            break
        head = _head(rest, limit)
        parts.append(head.rstrip())
        rest = rest[len(head) :].lstrip("\n ")
    return [p for p in parts if p]


def _head(text: str, limit: int) -> str:
    """The longest prefix within ``limit`` that ends at a paragraph, line or word boundary."""
    window = text[:limit]
    for sep in ("\n\n", "\n", ". ", " "):
        cut = window.rfind(sep)
        if cut >= limit // 2:
            return window[: cut + len(sep)]
    return window


def bb_escape(text: str) -> str:
    """User or client text must not open BB-code tags of its own."""
    return text.replace("[", "(").replace("]", ")")


def text_to_bbcode(text: str) -> str:
    """Free text for a Bitrix24 comment or message (an LLM's summary, a recommendation someone
    typed): its own BB-code tags neutralised, then its Markdown (``**Совет:**``) turned into
    BB-code, since Bitrix24 renders BB-code only."""
    return markdown_to_bbcode(bb_escape(text)).strip()
