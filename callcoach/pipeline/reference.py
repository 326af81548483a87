"""Reference client lines the offline objection model learns from, each with its context.

``reference_data/<class>.json`` holds, per objection category code (and ``none`` for ordinary talk,
``novel`` for objections outside the ten standard categories), a list of
``{"context": the manager's preceding line or "", "text": the client's line}``. They were written
from the category definitions, never from the evaluation calls: direct and indirect ways of
voicing each objection, and for ``none`` the hard negatives a real call is full of (a neutral
question about price or terms, the current supplier mentioned without complaint, a competitor
named by the manager). tests/pipeline/test_phrasebook.py checks that no line shares a
four-word sequence with any evaluation set.

The older phrasebook (categories.py examples, phrasebook.json) is folded in as well, with no
context, so nothing learnt before is lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from callcoach.pipeline import phrasebook
from callcoach.pipeline.categories import STANDARD_CODES, standard_categories

NONE = "none"
NOVEL = "novel"


@dataclass(frozen=True)
class Example:
    """One client line and what the manager said just before it ("" when unknown)."""

    context: str
    text: str


def _read(name: str) -> list[Example]:
    folder = resources.files(__package__).joinpath("reference_data")
    entry = folder.joinpath(f"{name}.json")
    if not entry.is_file():
        return []
    data: Any = json.loads(entry.read_text(encoding="utf-8"))
    out: list[Example] = []
    for item in data:
        if isinstance(item, str):
            out.append(Example("", item.strip()))
        elif isinstance(item, dict) and str(item.get("text", "")).strip():
            out.append(Example(str(item.get("context") or "").strip(), str(item["text"]).strip()))
    return out


def _dedupe(examples: list[Example]) -> list[Example]:
    seen: set[str] = set()
    out = []
    for e in examples:
        key = " ".join(e.text.lower().split())
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


@cache
def reference_examples() -> dict[str, tuple[Example, ...]]:
    """Class -> examples: the ten standard codes, ``none`` and ``novel``."""
    standard = {c.code: c for c in standard_categories()}
    out: dict[str, tuple[Example, ...]] = {}
    for code in STANDARD_CODES:
        older = [*standard[code].examples, *phrasebook.extra_examples(code)]
        out[code] = tuple(_dedupe([*_read(code), *(Example("", x) for x in older)]))
    out[NOVEL] = tuple(_dedupe([*_read(NOVEL), *(Example("", x) for x in phrasebook.other_objections())]))
    out[NONE] = tuple(_dedupe([*_read(NONE), *(Example("", x) for x in phrasebook.client_lines())]))
    # one line is one class: a line written for a category and also as ordinary talk teaches nothing
    claimed: dict[str, str] = {}
    for label, examples in out.items():
        for e in examples:
            claimed.setdefault(" ".join(e.text.lower().split()), label)
    return {
        label: tuple(e for e in examples if claimed[" ".join(e.text.lower().split())] == label)
        for label, examples in out.items()
    }


CLASSES = (*STANDARD_CODES, NONE, NOVEL)


def packaged_texts() -> list[str]:
    """Every line and context of the reference files and every turn of the training calls (for
    the wording-overlap test)."""
    out: list[str] = []
    for label in CLASSES:
        for e in _read(label):
            out.append(e.text)
            if e.context:
                out.append(e.context)
    out += [text for call in topic_calls() for _, text in call.turns]
    return out


@dataclass(frozen=True)
class TrainingCall:
    """A whole call written blind from the topic, mood and objection definitions, labelled as a
    supervisor would."""

    id: str
    topic: str
    sentiment: str
    turns: tuple[tuple[str, str], ...]  # (speaker, text)
    # per turn, the objection category a client turn raises ("" for none); None when the call's
    # objections were not kept (the first 288 calls: only their topic and mood survived)
    objections: tuple[str, ...] | None = None


def _training_call(c: dict[str, Any]) -> TrainingCall:
    turns = [t for t in c["turns"] if str(t["text"]).strip()]
    return TrainingCall(
        id=str(c["id"]),
        topic=str(c["topic"]),
        sentiment=str(c["sentiment"]),
        turns=tuple((str(t["speaker"]), str(t["text"])) for t in turns),
        objections=tuple(str(t.get("objection") or "") for t in turns)
        if c.get("objections_labelled")
        else None,
    )


@cache
def topic_calls() -> tuple[TrainingCall, ...]:
    """``reference_data/topic_calls.json``: the whole-call topic and sentiment layers' training
    calls (288 calls by twelve authors, in 48 trades; scripts/import_topic_calls.py dropped every
    turn that shares a four-word sequence with an evaluation set). Calls imported with their
    objection labels also teach the objection model (``ObjectionThresholds.call_turns``); the
    labelled batch waits in scripts/training_calls."""
    entry = resources.files(__package__).joinpath("reference_data").joinpath("topic_calls.json")
    if not entry.is_file():
        return ()
    data: Any = json.loads(entry.read_text(encoding="utf-8"))
    return tuple(_training_call(c) for c in data if c.get("turns"))
