"""Copy whole training calls for the call-level topic layer into the package, checked:
callcoach/pipeline/reference_data/topic_calls.json.

usage: python scripts/import_topic_calls.py SOURCE.json ... [--calls DIR]

Each SOURCE holds ``{"calls": [{"id", "topic", "sentiment", "turns": [{"speaker", "text",
"objection"?}, ...]}]}``: calls written blind from the topic, mood and objection definitions (by
authors who saw neither the reference lines nor any evaluation call; scripts/topic_calls_brief.md),
each client turn that objects labelled with its category. A SOURCE may also be the packaged file
itself (a list of calls), so a new batch is added to what is there: its calls keep their own
``objections_labelled`` flag (the first 288 calls lost their objection labels).

Every turn that shares a four-word sequence with an evaluation set (the shared dev calls, every
bench/corpus/*.json) is dropped, as for the reference lines (scripts/import_reference.py), so
nothing can score by remembering the calls it is judged on; the rest of the call stays. Prints
what was kept and dropped.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from import_reference import CLASSES, ROOT, TARGET, add_calls_option, evaluation_or_none, grams

OBJECTIONS = tuple(c for c in CLASSES if c != "none")  # the ten codes and "novel"
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
    calls, why, seen = [], Counter[str](), set[str]()
    for path in args.sources:
        data = json.loads(path.read_text(encoding="utf-8"))
        packaged = isinstance(data, list)  # the packaged file: each call says if it is labelled
        for call in data if packaged else data["calls"]:
            labelled = bool(call.get("objections_labelled")) if packaged else True
            if call["id"] in seen:
                why["call already imported"] += 1
                continue
            if (
                call["topic"] not in TOPICS
                or call["sentiment"] not in SENTIMENTS
                or any(t.get("objection") not in (None, "", *OBJECTIONS) for t in call["turns"])
            ):
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
                    turn = {"speaker": t["speaker"], "text": text}
                    if labelled and t["speaker"] == "client" and t.get("objection"):
                        turn["objection"] = t["objection"]
                        why["objection turns kept"] += 1
                    turns.append(turn)
            why["turns kept"] += len(turns)
            labels = {k: call[k] for k in ("id", "topic", "sentiment")}
            seen.add(call["id"])
            calls.append({**labels, **({"objections_labelled": True} if labelled else {}), "turns": turns})
    out = TARGET / "topic_calls.json"
    out.write_text(json.dumps(calls, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(
        f"{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}: {len(calls)} calls",
        dict(why),
        dict(Counter(c["topic"] for c in calls)),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
