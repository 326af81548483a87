"""Accuracy of the call analysis, per set of calls: text level and, where recordings exist, audio.

usage: python bench/accuracy.py [--calls DIR] [--audio DIR ...] [--no-audio] [--no-cache]
                                [--sets SUBSTRING ...] [--recordings stereo|mono ...] [-v]
                                [--transcripts PACK ...] [--save-transcripts PACK]

Sets:
- the shared dev calls (``--calls``, default ../shared/calls), split into dev01–12 (the first
  set) and dev13–36 (long calls with several objections, hard negatives); each at text level
  (ground-truth turns fed straight to the text stage) and from its stereo and mono recordings;
- every ``bench/corpus/*.json`` (calls in the corpus script format: paraphrase sets, a held-out
  set dropped in later) at text level;
- every ``--audio DIR``: a folder rendered with ../shared/corpus/render.py (``<id>.json`` truth,
  ``<id>.mp3`` mono, ``<id>.stereo.mp3`` stereo), from its recordings (and at text level when
  no script file of the same calls is in bench/corpus). ``--paraphrase-audio DIR`` adds
  DIR/a, DIR/b, DIR/c for the paraphrase sets.

Per set it prints objection micro-F1, precision and recall, how many clean calls (no objection
in the truth) got an invented objection, topic and sentiment accuracy, and (audio) WER.
Objections are scored per call as sets of labels: a found objection counts when its category
matches a truth turn's category in that call; the truth label 'novel' is matched by a
new-category candidate (and must NOT appear as a standard category).

Transcripts: the packs in bench/transcripts (``--transcripts`` names others) seed the transcript
cache, so recordings already transcribed by the same Whisper model are not transcribed again
(bench/_transcripts.py says why); ``--save-transcripts PACK`` writes the transcripts of every
recording this run analysed. ``--no-cache`` ignores both.

``CALLCOACH_ANALYSIS`` / ``CALLCOACH_LLM`` choose the analysis as in the app (the LLM path
when configured); by default the offline embedding models.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _transcripts import PACKS, save, seed  # noqa: E402

from callcoach.config import Settings  # noqa: E402
from callcoach.llm.analysis import analysis_uses_llm  # noqa: E402
from callcoach.pipeline.models import Findings, Segment  # noqa: E402
from callcoach.pipeline.textutil import normalise_for_wer  # noqa: E402

CORPUS = ROOT / "bench" / "corpus"
FIRST_SET_LAST = 12  # dev01–dev12: the first dev set; later ids are the long multi-objection calls


def default_calls_dir() -> Path:
    env = os.environ.get("CALLCOACH_SHARED_DIR")
    return (Path(env) if env else ROOT.parent / "shared") / "calls"


def truth_labels(truth: dict[str, Any]) -> set[str]:
    return {t["objection"] for t in truth["turns"] if t.get("objection")}


def found_labels(f: Findings) -> set[str]:
    labels = {o.category for o in f.objections}
    if f.new_category_candidates:
        labels.add("novel")
    return labels


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    n: int = 0
    clean: int = 0
    invented: int = 0  # clean calls with some objection found
    topic_ok: int = 0
    sent_ok: int = 0
    errors: list[str] = field(default_factory=list)

    def count(self, t: set[str], p: set[str]) -> None:
        """One call's objections: the truth's labels against those found."""
        self.tp += len(t & p)
        self.fp += len(p - t)
        self.fn += len(t - p)
        self.n += 1
        if not t:
            self.clean += 1
            self.invented += bool(p)

    def add(self, call_id: str, truth: dict[str, Any], f: Findings) -> None:
        t, p = truth_labels(truth), found_labels(f)
        self.count(t, p)
        if t != p:
            quotes = "; ".join(f"{o.category}: «{o.quote}»" for o in f.objections)
            cands = "; ".join(f"novel: «{c.quote}»" for c in f.new_category_candidates)
            said = "; ".join(x for x in (quotes, cands) if x)
            self.errors.append(f"{call_id}: truth {sorted(t)} found {sorted(p)}  [{said}]")
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

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    def row(self, name: str, wer_value: float | None = None) -> str:
        n = max(self.n, 1)
        wer_text = f"{wer_value:6.3f}" if wer_value is not None else "     –"
        return (
            f"{name:34s} {self.n:5d} {self.f1:6.3f} {self.precision:6.3f} {self.recall:6.3f} "
            f"{self.invented:>4d}/{self.clean:<3d} {self.topic_ok / n:6.3f} {self.sent_ok / n:6.3f} "
            f"{wer_text}"
        )


HEADER = (
    f"{'set':34s} {'calls':>5s} {'objF1':>6s} {'prec':>6s} {'recall':>6s} {'inv/clean':>8s} "
    f"{'topic':>6s} {'sentim':>6s} {'WER':>6s}"
)


def wer(truths: Iterable[str], hyps: Iterable[str]) -> float:
    import jiwer

    refs = [normalise_for_wer(t) for t in truths]
    outs = [normalise_for_wer(h) for h in hyps]
    return float(jiwer.wer(refs, outs))


def truth_segments(truth: dict[str, Any]) -> list[Segment]:
    out, t = [], 0.0
    for turn in truth["turns"]:
        start = turn.get("start", t)
        end = turn.get("end", start + max(1.0, len(turn["text"]) / 14))
        out.append(Segment(speaker=turn["speaker"], start=start, end=end, text=turn["text"]))
        t = end + 0.5
    return out


def script_truths(path: Path) -> list[dict[str, Any]]:
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


def load_truths(calls_dir: Path) -> list[dict[str, Any]]:
    out = []
    for p in sorted(calls_dir.glob("*.json")):
        data = json.loads(p.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "turns" in data and "id" in data:
            out.append(data)
    return out


def _number(call_id: str) -> int:
    m = re.search(r"(\d+)", call_id)
    return int(m.group(1)) if m else 0


def dev_groups(truths: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """dev01–12 and the later calls, each named by its id range."""
    groups = [
        [t for t in truths if _number(t["id"]) <= FIRST_SET_LAST],
        [t for t in truths if _number(t["id"]) > FIRST_SET_LAST],
    ]
    return [(f"{g[0]['id']}–{g[-1]['id'].removeprefix('dev')}", g) for g in groups if g]


@dataclass
class AudioSet:
    name: str
    folder: Path
    truths: list[dict[str, Any]]


Refine = Callable[[Findings], Findings]


def text_level(
    text: Any, truths: list[dict[str, Any]], name: str, verbose: bool, refine: Refine | None = None
) -> Score:
    score = Score()
    for truth in truths:
        segments = truth_segments(truth)
        # ground-truth turns carry their speakers: judged as a stereo recording would be
        f = text.analyze_transcript(segments, channels="stereo")
        if refine is not None:
            f = refine(f)
        score.add(truth["id"], truth, f)
    print(score.row(f"{name} text"), flush=True)
    if verbose:
        for e in score.errors:
            print("   ", e)
    return score


def audio_level(
    analyzer: Any,
    s: AudioSet,
    suffix: str,
    kind: str,
    verbose: bool,
    refine: Refine | None = None,
    transcribed: list[str] | None = None,
) -> Score | None:
    present = [t for t in s.truths if (s.folder / f"{t['id']}{suffix}").is_file()]
    if not present:
        return None
    score, refs, hyps = Score(), [], []
    t0 = time.perf_counter()
    for truth in present:
        f = analyzer.analyze_file(s.folder / f"{truth['id']}{suffix}")
        key = analyzer.transcript_key(s.folder / f"{truth['id']}{suffix}")
        if transcribed is not None and key:
            transcribed.append(key)
        if refine is not None:
            f = refine(f)
        score.add(truth["id"], truth, f)
        refs.append(" ".join(t["text"] for t in truth["turns"]))
        hyps.append(" ".join(seg.text for seg in f.segments))
    print(
        score.row(f"{s.name} {kind}", wer(refs, hyps)) + f"  [{time.perf_counter() - t0:.0f} s]", flush=True
    )
    if verbose:
        for e in score.errors:
            print("   ", e)
    return score


def _wanted(name: str, filters: Sequence[str]) -> bool:
    return not filters or any(f.lower() in name.lower() for f in filters)


def sweep(settings: Sequence[str]) -> list[dict[str, Any]]:
    """``["objection=0.85,0.9", "unsure_extra=0.1"]`` -> every combination, as field values."""
    axes = []
    for item in settings:
        name, _, values = item.partition("=")
        axes.append([(name.strip(), float(v)) for v in values.split(",")])
    return [dict(combo) for combo in itertools.product(*axes)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--calls", type=Path, default=default_calls_dir())
    ap.add_argument("--audio", type=Path, action="append", default=[], help="a rendered set's folder")
    ap.add_argument("--paraphrase-audio", type=Path, help="folder with rendered paraphrase sets a/, b/, c/")
    ap.add_argument("--no-audio", action="store_true", help="text-level figures only")
    ap.add_argument("--no-cache", action="store_true")
    ap.add_argument("--sets", nargs="*", default=[], help="only sets whose name contains one of these")
    ap.add_argument(
        "--recordings",
        nargs="*",
        choices=("stereo", "mono"),
        default=["stereo", "mono"],
        help="which recordings of each set to transcribe (each kind costs a full transcription)",
    )
    ap.add_argument(
        "--transcripts",
        type=Path,
        nargs="*",
        default=sorted(PACKS.glob("*.json.gz")),
        help="transcript packs to seed the transcript cache from (default: bench/transcripts/*)",
    )
    ap.add_argument("--save-transcripts", type=Path, help="write this run's transcripts to this pack")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every miss")
    ap.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="NAME=V[,V...]",
        help="set an ObjectionThresholds field (a decision one, not one the fit depends on); "
        "several values run every combination in turn, on the same models and embeddings",
    )
    args = ap.parse_args(argv)

    from callcoach.pipeline.analyzer import Analyzer

    dev = dev_groups(load_truths(args.calls)) if args.calls.is_dir() else []
    scripts = sorted(CORPUS.glob("*.json"))
    audio_sets = [AudioSet(name, args.calls, group) for name, group in dev]
    if args.paraphrase_audio:
        for path in scripts:  # paraphrases_a.json -> DIR/a
            folder = args.paraphrase_audio / path.stem.removeprefix("paraphrases_")
            if folder.is_dir():
                audio_sets.append(AudioSet(path.stem, folder, load_truths(folder)))
    for folder in args.audio:
        audio_sets.append(AudioSet(folder.name, folder, load_truths(folder)))

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) if args.no_cache else Path(os.environ.get("CALLCOACH_DATA_DIR", ROOT / "data"))
        settings = Settings(data_dir=data_dir)
        analyzer = Analyzer(settings, use_cache=not args.no_cache)
        if analyzer.asr_cache is not None and args.transcripts:
            print(f"transcripts from packs: {seed(analyzer.asr_cache, args.transcripts)} new in the cache")
        text = analyzer.text
        refine: Refine | None = None
        if analysis_uses_llm(settings):  # CALLCOACH_ANALYSIS / CALLCOACH_LLM, as in the app
            from callcoach.llm.analysis import BlockingRefiner
            from callcoach.pipeline.categories import merge_categories

            llm = BlockingRefiner(settings)
            refine = partial(llm.__call__, categories=merge_categories(None))
            print(f"objections by the LLM: {llm.llm.name} (offline result where it fails)")
        print(f"text models: {text.versions}")
        base = text.objections.thresholds
        for values in sweep(args.threshold):
            text.objections.thresholds = dataclasses.replace(base, **values)
            if values:
                print(f"\nthresholds: {values}")
            print(HEADER)
            for name, group in dev:
                if _wanted(name, args.sets):
                    text_level(text, group, name, args.verbose, refine)
            script_names = {p.stem for p in scripts}
            for path in scripts:
                if _wanted(path.stem, args.sets):
                    text_level(text, script_truths(path), path.stem, args.verbose, refine)
            for s in audio_sets[len(dev) :]:
                if s.name not in script_names and _wanted(s.name, args.sets):
                    text_level(text, s.truths, s.name, args.verbose, refine)
            if args.no_audio:
                continue
            # the transcript keys hash each recording again: only worth it when a pack is written
            transcribed: list[str] | None = [] if args.save_transcripts else None
            for s in audio_sets:
                if not _wanted(s.name, args.sets):
                    continue
                for suffix, kind in ((".stereo.mp3", "stereo"), (".mp3", "mono")):
                    if kind in args.recordings:
                        audio_level(analyzer, s, suffix, kind, args.verbose, refine, transcribed)
        if args.save_transcripts and transcribed is not None and analyzer.asr_cache is not None:
            n = save(analyzer.asr_cache, transcribed, args.save_transcripts)
            print(f"{n} transcripts written to {args.save_transcripts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
