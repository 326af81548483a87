"""Long texts split into messages the Bitrix24 messenger accepts (at most 20,000 characters
each). What the texts say, and their BB-code, is ``callcoach.texts``."""

from __future__ import annotations

MAX_MESSAGE = 20_000
CUT_NOTE = "\n[i]… ответ сокращён[/i]"


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
