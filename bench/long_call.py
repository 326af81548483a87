"""A long recording end to end: time, peak memory and the progress line.

usage: python bench/long_call.py [--minutes 15] [--calls DIR]

Joins the dev stereo recordings (../shared/calls/dev13…dev36.stereo.mp3) into one stereo call of
about ``--minutes`` minutes, analyses it with the real models (no cache) and prints the progress
line as the speech recognition goes, then the wall time per stage, the objections found and the
process's peak resident memory. Memory must stay flat in the length of the call: the recording is
held once as 16 kHz float32 (about 7.7 MB a minute for two channels) and everything else works
turn by turn.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.accuracy import default_calls_dir  # noqa: E402
from callcoach.config import Settings  # noqa: E402
from callcoach.pipeline import audio  # noqa: E402


def build(calls: Path, minutes: float, out: Path) -> float:
    parts, total = [], 0
    for path in sorted(calls.glob("dev*.stereo.mp3")):
        if int(path.name[3:5]) <= 12:
            continue
        decoded = audio.decode(path, max_seconds=7200)
        parts.append(decoded.channels)
        total += decoded.channels.shape[1]
        if total >= minutes * 60 * audio.SAMPLE_RATE:
            break
    joined = np.concatenate(parts, axis=1)
    pcm = (np.clip(joined.T, -1, 1) * 32767).astype(np.int16)
    with wave.open(str(out), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(audio.SAMPLE_RATE)
        w.writeframes(pcm.tobytes())
    return joined.shape[1] / audio.SAMPLE_RATE


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--calls", type=Path, default=default_calls_dir())
    args = ap.parse_args(argv)

    from callcoach.pipeline.analyzer import Analyzer

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        seconds = build(args.calls, args.minutes, path)
        print(f"recording: {seconds / 60:.1f} min, stereo")
        analyzer = Analyzer(Settings(data_dir=Path(tmp) / "data"), use_cache=False)
        analyzer.load()
        analyzer.classify_text("Дорого.")  # the objection layer is fitted on first use: not timed here
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()

        def progress(done: float, total: float) -> None:
            print(f"\r  speech recognition {done / 60:5.1f} / {total / 60:.1f} min", end="", flush=True)

        f = analyzer.analyze_file(path, progress=progress)
        print()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        times = analyzer.last_times
        print(
            f"analysed in {time.perf_counter() - t0:.0f} s (decode {times.decode:.0f}, asr {times.asr:.0f}, "
            f"speakers {times.speakers:.0f}, text {times.text:.0f}); {len(f.segments)} segments"
        )
        found = [o.category for o in f.objections]
        print(f"objections: {found}; new-category candidates: {len(f.new_category_candidates)}")
        print(f"peak memory: {peak:.0f} MB (models loaded: {base:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
