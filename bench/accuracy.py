"""Accuracy of the call analysis on the shared dev calls and the paraphrase set.

usage: python bench/accuracy.py [--calls DIR] [--no-audio] [--no-cache]

Prints, for mono (.mp3) and stereo (.stereo.mp3) recordings: objection micro-F1, topic and
sentiment accuracy, transcript WER; and text-level figures on the dev scripts and on the two
paraphrase sets in bench/corpus/ (72 calls that say what the dev calls say in other words;
ground-truth turns fed straight to the text stage). ``--paraphrase-audio DIR`` adds audio
figures for those sets rendered with ../shared/corpus/render.py into DIR/a, DIR/b, DIR/c.

Objections are scored per call as sets of labels: a found objection counts when its category
matches a truth turn's category in that call; the truth label 'novel' is matched by a
new-category candidate (and must NOT appear as a standard category).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callcoach.config import Settings  # noqa: E402
from callcoach.pipeline.models import Findings, Segment  # noqa: E402
from callcoach.pipeline.textutil import normalise_for_wer  # noqa: E402

PARAPHRASES = sorted((ROOT / "bench" / "corpus").glob("paraphrases_*.json"))


def default_calls_dir() -> Path:
    env = os.environ.get("CALLCOACH_SHARED_DIR")
    return (Path(env) if env else ROOT.parent / "shared") / "calls"


def truth_labels(truth: dict) -> set[str]:
    return {t["objection"] for t in truth["turns"] if t.get("objection")}


def found_labels(f: Findings) -> set[str]:
    labels = {o.category for o in f.objections}
    if f.new_category_candidates:
        labels.add("novel")
    return labels


class Score:
    def __init__(self) -> None:
        self.tp = self.fp = self.fn = 0
        self.topic_ok = self.sent_ok = self.n = 0
        self.errors: list[str] = []

    def add(self, call_id: str, truth: dict, f: Findings) -> None:
        t, p = truth_labels(truth), found_labels(f)
        self.tp += len(t & p)
        self.fp += len(p - t)
        self.fn += len(t - p)
        if t != p:
            self.errors.append(f"{call_id}: truth {sorted(t)} found {sorted(p)}")
        self.n += 1
        self.topic_ok += f.topic.label == truth["topic"]
        self.sent_ok += f.sentiment.overall.label == truth["sentiment"]
        if f.topic.label != truth["topic"]:
            self.errors.append(f"{call_id}: topic {truth['topic']} -> {f.topic.label}")
        if f.sentiment.overall.label != truth["sentiment"]:
            self.errors.append(f"{call_id}: sentiment {truth['sentiment']} -> {f.sentiment.overall.label}")

    @property
    def f1(self) -> float:
        d = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / d if d else 1.0

    def row(self, name: str) -> str:
        return (
            f"{name:28s} objF1={self.f1:.3f} (tp={self.tp} fp={self.fp} fn={self.fn})  "
            f"topic={self.topic_ok / max(self.n, 1):.3f}  sentiment={self.sent_ok / max(self.n, 1):.3f}"
        )


def wer(truths: Iterable[str], hyps: Iterable[str]) -> float:
    import jiwer

    refs = [normalise_for_wer(t) for t in truths]
    outs = [normalise_for_wer(h) for h in hyps]
    return float(jiwer.wer(refs, outs))


def truth_segments(truth: dict) -> list[Segment]:
    out, t = [], 0.0
    for turn in truth["turns"]:
        start = turn.get("start", t)
        end = turn.get("end", start + max(1.0, len(turn["text"]) / 14))
        out.append(Segment(speaker=turn["speaker"], start=start, end=end, text=turn["text"]))
        t = end + 0.5
    return out


def script_truths(path: Path) -> list[dict]:
    """Calls in the corpus script format (``[speaker, text, objection?]`` turns) as truth records."""
    out = []
    for call in json.loads(path.read_text(encoding="utf-8"))["calls"]:
        turns = [
            {
                "speaker": "manager" if t[0] == "M" else "client",
                "text": t[1],
                "objection": t[2] if len(t) > 2 else None,
            }
            for t in call["turns"]
        ]
        out.append({"id": call["id"], "topic": call["topic"], "sentiment": call["sentiment"], "turns": turns})
    return out


def load_truths(calls_dir: Path) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(calls_dir.glob("*.json"))]


def text_level(text, truths: list[dict], name: str, verbose: bool) -> Score:  # type: ignore[no-untyped-def]
    score = Score()
    for truth in truths:
        f = text.analyze_transcript(truth_segments(truth))
        score.add(truth["id"], truth, f)
    print(score.row(name))
    if verbose:
        for e in score.errors:
            print("   ", e)
    return score


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=Path, default=default_calls_dir())
    ap.add_argument("--no-audio", action="store_true", help="text-level figures only")
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--paraphrase-audio", type=Path, help="folder with rendered paraphrase sets a/ and b/")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every miss")
    args = ap.parse_args(argv)

    from callcoach.pipeline.analyzer import Analyzer

    truths = load_truths(args.calls)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) if args.no_cache else Path(os.environ.get("CALLCOACH_DATA_DIR", ROOT / "data"))
        analyzer = Analyzer(Settings(data_dir=data_dir), use_cache=not args.no_cache)
        text = analyzer.text
        print(f"text models: {text.versions}")
        text_level(text, truths, "dev scripts (text level)", args.verbose)
        for path in PARAPHRASES:
            text_level(text, script_truths(path), f"{path.stem} (text level)", args.verbose)
        if args.no_audio:
            return 0
        sets = [("dev", args.calls, truths)]
        if args.paraphrase_audio:
            for path in PARAPHRASES:  # paraphrases_a.json -> DIR/a
                folder = args.paraphrase_audio / path.stem.removeprefix("paraphrases_")
                if folder.is_dir():
                    sets.append((path.stem, folder, load_truths(folder)))
        for (suffix, name), (set_name, folder, set_truths) in (
            (m, s) for s in sets for m in ((".mp3", "mono"), (".stereo.mp3", "stereo"))
        ):
            score, refs, hyps = Score(), [], []
            t0 = time.perf_counter()
            for truth in set_truths:
                path = folder / f"{truth['id']}{suffix}"
                f = analyzer.analyze_file(path)
                score.add(truth["id"], truth, f)
                refs.append(" ".join(t["text"] for t in truth["turns"]))
                hyps.append(" ".join(s.text for s in f.segments))
            print(
                score.row(f"{set_name} {name} ({len(set_truths)} calls)") + f"  WER={wer(refs, hyps):.3f}"
                f"  [{time.perf_counter() - t0:.0f} s]"
            )
            if args.verbose:
                for e in score.errors:
                    print("   ", e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
