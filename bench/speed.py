"""Speed of each pipeline stage on the shared calls: realtime factor and peak memory.

usage: python bench/speed.py [--calls DIR] [--device cpu|cuda|auto] [--batch N] [--model NAME] [--stereo]
                             [--concurrent 1,4,16] [--batched auto|on|off] [--no-stages]

RTF = processing seconds / audio seconds (lower is faster). Peak memory is the process's max
resident set (resource.getrusage), which includes native allocations (CTranslate2, numpy).

``--concurrent`` then analyses 1, 4 and 16 calls at once, as a worker with that many jobs does
(one analysis thread per call: decoding and text analysis overlap speech recognition of another
call; with the batched pipeline — a GPU, or ``--batched on`` — the calls share ASR passes), and
prints the realtime factor of the whole group: wall seconds / audio seconds of all its calls.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callcoach.config import Settings  # noqa: E402


def default_calls_dir() -> Path:
    env = os.environ.get("CALLCOACH_SHARED_DIR")
    return (Path(env) if env else ROOT.parent / "shared") / "calls"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=Path, default=default_calls_dir())
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--model", default="bundled-base")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--stereo", action="store_true", help="use the .stereo.mp3 recordings")
    ap.add_argument("--concurrent", default="1,4,16", help="calls at once, comma-separated ('' = skip)")
    ap.add_argument("--batched", choices=["auto", "on", "off"], default="auto", help="batched pipeline")
    ap.add_argument("--no-stages", action="store_true", help="skip the per-stage table over all files")
    args = ap.parse_args(argv)

    from callcoach.pipeline import audio
    from callcoach.pipeline.analyzer import Analyzer, StageTimes

    suffix = ".stereo.mp3" if args.stereo else ".mp3"
    files = sorted(
        p for p in args.calls.glob(f"*{suffix}") if args.stereo or not p.name.endswith(".stereo.mp3")
    )
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            whisper_model=args.model,
            whisper_device=args.device,
            whisper_batch_size=args.batch,
            whisper_cpu_threads=args.threads,
            whisper_batched=args.batched,
        )
        analyzer = Analyzer(settings, use_cache=False)
        t0 = time.perf_counter()
        analyzer.load()
        load_s = time.perf_counter() - t0
        totals = StageTimes()
        audio_s = wall = 0.0
        for path in [] if args.no_stages else files:
            t0 = time.perf_counter()
            analyzer.analyze_file(path)
            wall += time.perf_counter() - t0
            t = analyzer.last_times
            totals.decode += t.decode
            totals.asr += t.asr
            totals.speakers += t.speakers
            totals.text += t.text
            audio_s += audio.decode(path, max_seconds=analyzer.max_audio_s).duration
        st = analyzer.state()["whisper"]
        if audio_s:
            print(
                f"{len(files)} recordings ({suffix}), {audio_s:.0f} s of audio; model {args.model} on "
                f"{st['device']}/{st['compute_type']}; batch {args.batch}; models loaded in {load_s:.1f} s"
            )
            print(f"{'stage':24s} {'seconds':>9s} {'RTF':>8s} {'x realtime':>11s}")
            for name, secs in (
                ("decode", totals.decode),
                ("ASR", totals.asr),
                ("speaker split", totals.speakers),
                ("text analysis", totals.text),
                ("end to end", wall),
            ):
                print(f"{name:24s} {secs:9.2f} {secs / audio_s:8.4f} {audio_s / max(secs, 1e-9):11.1f}")
        levels = [int(n) for n in args.concurrent.split(",") if n.strip()]
        if levels:
            run_concurrent(analyzer, files, levels, st, batched=analyzer.transcriber.batched)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mb:.0f} MiB")
    return 0


def run_concurrent(
    analyzer: Any, files: list[Path], levels: list[int], st: dict[str, Any], *, batched: bool
) -> None:
    """Groups of N calls analysed at once, one thread per call (as a worker runs them)."""
    from concurrent.futures import ThreadPoolExecutor

    from callcoach.pipeline import audio

    durations = {p: audio.decode(p, max_seconds=analyzer.max_audio_s).duration for p in files}
    analyzer.analyze_file(files[-1])  # warm-up: the first call fits the text classifiers once
    print(
        f"calls at once on {st['device']}/{st['compute_type']} "
        f"({'batched pipeline: calls share ASR passes' if batched else 'sequential decoder'})"
    )
    print(f"{'calls':>6s} {'audio s':>9s} {'wall s':>9s} {'RTF':>8s} {'x realtime':>11s} {'ASR passes':>11s}")
    for n in levels:
        group = [files[i % len(files)] for i in range(n)]
        passes = analyzer.asr.passes
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=n) as pool:
            list(pool.map(lambda p: analyzer.analyze_file(p), group))
        wall = time.perf_counter() - t0
        audio_s = sum(durations[p] for p in group)
        runs = analyzer.asr.passes - passes if batched else n
        print(f"{n:6d} {audio_s:9.1f} {wall:9.2f} {wall / audio_s:8.4f} {audio_s / wall:11.1f} {runs:11d}")


if __name__ == "__main__":
    sys.exit(main())
