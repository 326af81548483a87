"""Small text helpers shared by the text-analysis stages."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_WORD = re.compile(r"[a-zа-яё0-9]+", re.IGNORECASE)


def sentences(text: str) -> list[str]:
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip())]
    return [p for p in parts if len(_WORD.findall(p)) >= 1]


def words(text: str) -> list[str]:
    return [w.lower().replace("ё", "е") for w in _WORD.findall(text)]


def normalise_for_wer(text: str) -> str:
    """Lowercase, ё→е, punctuation stripped, single spaces (how transcripts are compared)."""
    return " ".join(words(text))
