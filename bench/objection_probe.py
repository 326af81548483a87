"""The objection detector read on the training calls, each author's calls by a model fitted without them.

usage: python bench/objection_probe.py [--bars 0.8 0.85 0.9] [--no-call-turns]

The whole training calls (``reference.topic_calls``) whose objections were labelled are twelve
authors' work in 48 trades the dev calls never touch: hundreds of calls, against the 24 long dev
calls. A client-turn bar chosen on dev13–36 alone follows a handful of calls; read here, each
author's calls judged by a detector fitted on the other eleven (leave-one-author-out: the
reference lines and the other authors' calls), the figure says how the detector does on a writer
and trades it has never seen. Text level, roles known. For each bar it prints objection micro-F1,
precision, recall and the clean calls given an invented objection, pooled over the authors.
``--no-call-turns`` fits on the reference lines alone (the calls only as the judged set), for the
comparison. Choose on these and on the dev sets (bench/accuracy.py --threshold); read the held-out
sets once.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accuracy import Score  # noqa: E402

from callcoach.config import Settings  # noqa: E402
from callcoach.pipeline.categories import merge_categories  # noqa: E402
from callcoach.pipeline.linear import FittedModels  # noqa: E402
from callcoach.pipeline.models import Segment  # noqa: E402
from callcoach.pipeline.objections import ObjectionClassifier, ObjectionThresholds  # noqa: E402
from callcoach.pipeline.reference import TrainingCall, topic_calls  # noqa: E402
from callcoach.pipeline.text_analysis import TextAnalyzer  # noqa: E402


def author(call: TrainingCall) -> str:
    return call.id.split("_")[0]


def labels(call: TrainingCall) -> set[str]:
    return {code for code in call.objections or () if code}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--bars", type=float, nargs="*", default=[0.8, 0.85, 0.9, 0.94])
    ap.add_argument("--no-call-turns", action="store_true")
    args = ap.parse_args(argv)
    data_dir = Path(os.environ.get("CALLCOACH_DATA_DIR", ROOT / "data"))
    text = TextAnalyzer(Settings(data_dir=data_dir))
    fitted = FittedModels(data_dir / "models")
    categories = merge_categories(None)
    calls = topic_calls()
    judged = [c for c in calls if c.objections is not None]
    authors = sorted({author(c) for c in judged})
    print(f"{len(judged)} labelled calls by {len(authors)} authors; {len(calls)} training calls in all")
    scores = {bar: Score() for bar in args.bars}
    per_author = {bar: {a: Score() for a in authors} for bar in args.bars}
    base = ObjectionThresholds(call_turns=not args.no_call_turns)
    t0 = time.perf_counter()
    for held in authors:
        others = [c for c in calls if author(c) != held]
        detector = ObjectionClassifier(text.embedders, base, fitted=fitted, training_calls=others)
        for call in (c for c in judged if author(c) == held):
            segments = [
                Segment(speaker=s, start=i, end=i + 1.0, text=t) for i, (s, t) in enumerate(call.turns)
            ]
            for bar in args.bars:
                detector.thresholds = dataclasses.replace(base, objection=bar)
                found, candidates = detector.detect(segments, categories, speakers_known=True)
                got = {o.category for o in found} | ({"novel"} if candidates else set())
                for score in (scores[bar], per_author[bar][held]):
                    score.count(labels(call), got)
        print(f"  {held}: {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"\n{'bar':>6} {'F1':>6} {'prec':>6} {'recall':>6} {'invented/clean':>15}  F1 per author")
    for bar, s in scores.items():
        spread = " ".join(f"{per_author[bar][a].f1:.2f}" for a in authors)
        row = f"{bar:6.2f} {s.f1:6.3f} {s.precision:6.3f} {s.recall:6.3f} {s.invented:>7d}/{s.clean:<7d}"
        print(f"{row}  {spread}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
