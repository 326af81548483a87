"""The reference phrases the offline models learn from must not quote the calls they are judged on:
a model that scores well because it memorised the evaluation wording would fail the calls users
bring. Checked as shared four-word sequences against the dev calls and the paraphrase sets."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from callcoach.pipeline import phrasebook, reference, sentiment, topics
from callcoach.pipeline.categories import merge_categories
from tests.pipeline.conftest import REPO, shared_calls_dir

_WORD = re.compile(r"[а-яёa-z0-9]+")


def _grams(text: str, n: int = 4) -> set[tuple[str, ...]]:
    w = _WORD.findall(text.lower())
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)


def _reference_phrases() -> list[str]:
    out = [*phrasebook.client_lines(), *phrasebook.manager_lines(), *phrasebook.other_objections()]
    for c in merge_categories(None):
        out += [*c.examples, *phrasebook.extra_examples(c.code)]
    for label in topics.TOPIC_PROTOTYPES:
        out += [*topics.TOPIC_PROTOTYPES[label], *phrasebook.topic_examples(label)]
    out += phrasebook.topic_neutral_lines()
    for label in sentiment.LABELS:
        out += [*sentiment.PROTOTYPES[label], *phrasebook.sentiment_examples(label)]
    return out


def _evaluation_grams(paths: list[Path]) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        for text in _strings(data["calls"] if "calls" in data else data["turns"]):
            out |= _grams(text)
    return out


def test_reference_lines_share_no_wording_with_any_evaluation_set() -> None:
    """The reference lines by class (and the manager lines they answer) were written from the
    category definitions and checked against every evaluation set: the dev calls (all of them),
    every call set in bench/corpus (paraphrases, any held-out set dropped in later)."""
    paths = sorted((REPO / "bench" / "corpus").glob("*.json")) + sorted(shared_calls_dir().glob("*.json"))
    evaluation = _evaluation_grams(paths)
    examples = reference.reference_examples()
    assert all(len(examples[c.code]) >= 200 for c in merge_categories(None))
    assert len(examples[reference.NONE]) >= 400
    assert [t for t in reference.packaged_texts() if _grams(t) & evaluation] == []


def test_reference_phrases_share_no_wording_with_the_evaluation_calls() -> None:
    corpus = REPO / "bench" / "corpus"
    tuned_on = [corpus / "paraphrases_a.json", corpus / "paraphrases_b.json"]
    tuned_on += sorted(shared_calls_dir().glob("*.json"))  # absent outside the workspace
    phrases = _reference_phrases()
    assert len(phrases) > 1500
    evaluation = _evaluation_grams(tuned_on)
    assert [p for p in phrases if _grams(p) & evaluation] == []
    # set C was written later by someone who never saw these phrases: a few everyday turns of
    # speech ("договорились, жду от вас ...") meet by chance, no more
    held_out = _evaluation_grams([corpus / "paraphrases_c.json"])
    assert len([p for p in phrases if _grams(p) & held_out]) <= 12
