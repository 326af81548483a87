"""The whole-call topic and sentiment layers, read on the dev sets and on their own training calls.

usage: python bench/whole_call_probe.py [--weights 0.5 1 2] [--full-turns 12 20] [--sure 0.8]

The training calls (``reference.topic_calls``) are twelve authors' work, so a layer is read on an
author's calls only when fitted without them (leave-one-author-out): the figure for "training"
says how the layer does on an author and trades it has never seen, the dev figures how it does on
the evaluation calls (the layer as shipped, fitted on every author). For each topic weight and
full-weight length it prints topic accuracy on dev01–12, dev13–36, the paraphrase sets and the
training calls; for the sentiment layer's certainty bar, sentiment accuracy on the same sets.
Everything else (the per-turn models, the objection hints, the objections found) is the product's
own, at text level. Choose on these; read the held-out sets once with bench/accuracy.py.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accuracy import default_calls_dir, load_truths, script_truths, truth_segments  # noqa: E402

from callcoach.config import Settings  # noqa: E402
from callcoach.pipeline import sentiment as sent  # noqa: E402
from callcoach.pipeline import topics  # noqa: E402
from callcoach.pipeline.embeddings import features  # noqa: E402
from callcoach.pipeline.linear import SoftmaxRegression  # noqa: E402
from callcoach.pipeline.reference import topic_calls  # noqa: E402
from callcoach.pipeline.text_analysis import TextAnalyzer  # noqa: E402

STANDARD = list(topics.TOPIC_PROTOTYPES)


@dataclass
class Read:
    """One call as the text stage sees it, with what the layers need."""

    group: str  # dev01–12, dev13–36, paraphrases, or the training call's author
    topic: str
    sentiment: str
    turns: int
    per_turn: np.ndarray  # the per-turn sum with the objection hints, per standard topic
    call: np.ndarray  # topics.call_vector
    client: np.ndarray  # sentiment.client_vector of the client's turns
    rule: str  # the turn rule's sentiment


class _TurnsOnly:
    """The product's sentiment model without its whole-call layer: the turn rule alone."""

    def __init__(self, model: sent.SentimentModel) -> None:
        self.model, self.name = model, model.name

    def turn_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.turn_probabilities(texts)

    def call_probabilities(self, texts: Sequence[str]) -> np.ndarray | None:
        return None


def read(text: TextAnalyzer, truth: dict[str, Any], group: str) -> Read:
    segments = [s for s in truth_segments(truth) if s.text.strip()]
    texts = [s.text for s in segments]
    f = text.analyze_transcript(segments, channels="stereo")
    x = features(text.topics.embedders, texts)  # type: ignore[attr-defined]
    found = [o.category for o in f.objections] + ["novel"] * bool(f.new_category_candidates)
    client = [t for s, t in zip(segments, texts, strict=True) if s.speaker != "manager"] or texts
    rule = sent.analyse_sentiment(_TurnsOnly(text.sentiment), segments, f.objections).overall.label
    return Read(
        group,
        truth["topic"],
        truth["sentiment"],
        len(texts),
        text.topics.turn_scores(topics._topics(None), x, found),  # type: ignore[attr-defined]
        topics.call_vector(x),
        sent.client_vector(features(text.topics.embedders, client)),  # type: ignore[attr-defined]
        rule,
    )


def fit(x: np.ndarray, y: np.ndarray, classes: int, l2: float) -> SoftmaxRegression:
    counts = np.bincount(y, minlength=classes).astype(np.float64)
    return SoftmaxRegression.fit(
        x, y, classes, class_weights=counts.mean() / np.maximum(counts, 1.0), l2=l2, steps=1500, rate=2.0
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--weights", type=float, nargs="*", default=[0.5, topics.CALL_WEIGHT, 2.0])
    ap.add_argument("--full-turns", type=int, nargs="*", default=[12, topics.CALL_FULL_TURNS])
    ap.add_argument("--sure", type=float, nargs="*", default=[0.7, sent.WHOLE_CALL_SURE, 0.9])
    args = ap.parse_args(argv)
    text = TextAnalyzer(Settings(data_dir=Path(os.environ.get("CALLCOACH_DATA_DIR", ROOT / "data"))))
    dev = load_truths(default_calls_dir())
    evaluation = {
        "dev01–12": [t for t in dev if int(t["id"][3:]) <= 12],
        "dev13–36": [t for t in dev if int(t["id"][3:]) > 12],
        "paraphrases": [
            c
            for p in sorted((ROOT / "bench" / "corpus").glob("paraphrases_*.json"))
            for c in script_truths(p)
        ],
    }
    reads = [read(text, t, group) for group, truths in evaluation.items() for t in truths]
    training = [
        read(
            text,
            {
                "topic": c.topic,
                "sentiment": c.sentiment,
                "turns": [{"speaker": s, "text": t} for s, t in c.turns],
            },
            c.id.split("_")[0],
        )
        for c in topic_calls()
    ]
    authors = sorted({r.group for r in training})
    # each training call's layer outputs from a layer fitted without its author; dev: all authors
    topic_logp: dict[int, np.ndarray] = {}
    mood: dict[int, np.ndarray] = {}
    for held in [None, *authors]:
        fitted = [r for r in training if r.group != held]
        tm = fit(
            np.stack([r.call for r in fitted]),
            np.array([STANDARD.index(r.topic) for r in fitted]),
            len(STANDARD),
            topics.CALL_L2,
        )
        sm = fit(
            np.stack([r.client for r in fitted]),
            np.array([sent.LABELS.index(r.sentiment) for r in fitted]),
            3,
            sent.WHOLE_CALL_L2,
        )
        for r in reads if held is None else [r for r in training if r.group == held]:
            topic_logp[id(r)] = np.log(tm.predict(r.call[None])[0].astype(np.float64) + 1e-12)
            mood[id(r)] = sm.predict(r.client[None])[0]
    sets = [*evaluation, "training"]

    def members(name: str) -> list[Read]:
        return training if name == "training" else [r for r in reads if r.group == name]

    print("topic          " + "".join(f"{s:>13}" for s in sets))
    for weight, full in [(0.0, 1), *itertools.product(args.weights, args.full_turns)]:
        row = []
        for s in sets:
            ok = []
            for r in members(s):
                lp = topic_logp[id(r)] - topic_logp[id(r)].mean()
                ok.append(
                    STANDARD[int(np.argmax(r.per_turn + weight * min(1.0, r.turns / full) * lp))] == r.topic
                )
            row.append(f"{np.mean(ok):13.3f}")
        name = "per-turn sum" if weight == 0 else f"{weight:g} nat/{full} turns"
        print(f"{name:<15}" + "".join(row))
    print("sentiment      " + "".join(f"{s:>13}" for s in sets))
    for sure in [2.0, *args.sure]:
        row = []
        for s in sets:
            ok = []
            for r in members(s):
                p, label = mood[id(r)], r.rule
                if (
                    label == "neutral"
                    and r.turns >= sent.WHOLE_CALL_TURNS
                    and sent.LABELS[int(np.argmax(p))] != "neutral"
                    and p.max() >= sure
                ):
                    label = sent.LABELS[int(np.argmax(p))]
                ok.append(label == r.sentiment)
            row.append(f"{np.mean(ok):13.3f}")
        print(f"{'turn rule' if sure > 1 else f'sure {sure:g}':<15}" + "".join(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
