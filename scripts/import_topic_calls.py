"""Copy whole training calls for the call-level topic layer into the package, checked:
callcoach/pipeline/reference_data/topic_calls.json.

usage: python scripts/import_topic_calls.py SOURCE.json ... [--calls DIR]

Each SOURCE holds ``{"calls": [{"id", "topic", "sentiment", "turns": [{"speaker", "text"}, ...]}]}``:
calls written blind from the topic definitions (by authors who saw neither the reference lines
nor any evaluation call). Every turn that shares a four-word sequence with an evaluation set (the
shared dev calls, every bench/corpus/*.json) is dropped, as for the reference lines
(scripts/import_reference.py), so the layer cannot score by remembering the calls it is judged
on; the rest of the call stays. Prints what was kept and dropped.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from import_reference import ROOT, TARGET, add_calls_option, evaluation_or_none, grams

TOPICS = ("sales", "support", "consultation", "complaint", "info_request", "order", "partnership")
SENTIMENTS = ("negative", "neutral", "positive")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("sources", type=Path, nargs="+")
    add_calls_option(ap)
    args = ap.parse_args(argv)
    evaluation = evaluation_or_none(args.calls)
    if evaluation is None:
        return 2
    calls, why = [], Counter[str]()
    for path in args.sources:
        for call in json.loads(path.read_text(encoding="utf-8"))["calls"]:
            if call["topic"] not in TOPICS or call["sentiment"] not in SENTIMENTS:
                why["call with an unknown label"] += 1
                continue
            turns = []
            for t in call["turns"]:
                text = " ".join(str(t["text"]).split())
                if t["speaker"] not in ("manager", "client") or not text:
                    why["turn without a speaker or text"] += 1
                elif grams(text) & evaluation:
                    why["turn overlaps an evaluation set"] += 1
                else:
                    turns.append({"speaker": t["speaker"], "text": text})
            why["turns kept"] += len(turns)
            labels = {k: call[k] for k in ("id", "topic", "sentiment")}
            calls.append({**labels, "turns": turns})
    out = TARGET / "topic_calls.json"
    out.write_text(json.dumps(calls, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"{out.relative_to(ROOT)}: {len(calls)} calls", dict(why), dict(Counter(c["topic"] for c in calls)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
