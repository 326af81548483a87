"""``callcoach analyze PATH... --json OUT.json``: analyse recordings from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from callcoach.config import Settings

AUDIO_SUFFIXES = {".mp3", ".wav", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".flac", ".wma", ".webm", ".mp4"}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("analyze", help="transcribe and analyse call recordings")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="audio files or folders")
    p.add_argument("--json", dest="json_out", type=Path, required=True, metavar="OUT.json")
    p.add_argument(
        "--categories", type=Path, help="JSON list of custom categories (added to the standard ten)"
    )
    p.add_argument("--no-cache", action="store_true", help="analyse again even when a cached result exists")
    p.set_defaults(func=run)


def collect(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            )
        else:
            out.append(path)  # a missing or odd file is reported per file, not fatal for the run
    return out


def findings_record(f: Any) -> dict[str, Any]:
    data = f.model_dump(mode="json")
    keep = (
        "file",
        "duration",
        "channels",
        "speakers_known",
        "segments",
        "objections",
        "topic",
        "sentiment",
        "stats",
        "summary",
        "new_category_candidates",
        "language",
        "models",
    )
    return {k: data[k] for k in keep}


def run(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from callcoach.llm.analysis import analysis_uses_llm
    from callcoach.pipeline.analyzer import Analyzer
    from callcoach.pipeline.categories import CategoryFormatError, categories_from_json, merge_categories
    from callcoach.pipeline.errors import PipelineError

    categories = None
    if args.categories:
        try:
            categories = categories_from_json(args.categories.read_text(encoding="utf-8"))
        except (OSError, CategoryFormatError) as exc:
            print(f"callcoach analyze: {args.categories}: {exc}", file=sys.stderr)
            return 2
    files = collect(args.paths)
    if not files:
        print("callcoach analyze: no audio files found", file=sys.stderr)
        return 1
    analyzer = Analyzer(settings, use_cache=not args.no_cache)
    refine = None
    if analysis_uses_llm(settings):  # the LLM's objections, checked; the offline result on failure
        from callcoach.llm.analysis import BlockingRefiner

        refine = BlockingRefiner(settings)
    cats = merge_categories(categories)
    results: list[dict[str, Any]] = []
    failed = 0
    bar = tqdm(files, desc="analyze", unit="call", file=sys.stderr)
    for path in bar:

        def progress(done: float, total: float, name: str = path.name) -> None:
            # a long recording takes minutes to transcribe on a CPU: show how far it got
            bar.set_postfix_str(f"{name} {done / 60:.1f}/{total / 60:.1f} min", refresh=True)

        try:
            findings = analyzer.analyze_file(path, categories=categories, progress=progress)
            if refine is not None:
                findings = refine(findings, cats)
            results.append(findings_record(findings))
        except PipelineError as exc:
            failed += 1
            results.append({"file": str(path), "error": str(exc)})
        except Exception as exc:  # one broken file must not lose the others' results
            failed += 1
            results.append({"file": str(path), "error": f"{exc.__class__.__name__}: {exc}"})
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json_out.with_suffix(args.json_out.suffix + ".tmp")
        tmp.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(args.json_out)  # written after each file: an interrupted run keeps what it did
    if refine is not None:
        refine.close()
    print(f"analyzed {len(files) - failed} of {len(files)} recordings -> {args.json_out}", file=sys.stderr)
    return 1 if failed else 0
