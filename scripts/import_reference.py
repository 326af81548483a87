"""Copy reference client lines into the package, checked: callcoach/pipeline/reference_data/<class>.json.

usage: python scripts/import_reference.py SOURCE_DIR [--calls DIR]

SOURCE_DIR holds one JSON file per class (the ten standard category codes, ``none``, ``novel``),
each a list of ``{"context": manager's preceding line or "", "text": client line}``. Lines are
stripped and deduplicated (within a class and across classes: a line claimed by two classes is
dropped from both, it teaches nothing), and every line whose text or context shares a four-word
sequence with an evaluation set (the shared dev calls, every bench/corpus/*.json) is dropped, so
the model cannot score by remembering the calls it is judged on. Prints what was kept and dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "callcoach" / "pipeline" / "reference_data"
CLASSES = (
    "price",
    "no_time",
    "has_alternative",
    "unclear_need",
    "cannot_decide",
    "terms_mismatch",
    "lack_of_trust",
    "competitors",
    "quality",
    "expertise_doubt",
    "none",
    "novel",
)
_WORD = re.compile(r"[а-яёa-z0-9]+")


def grams(text: str, n: int = 4) -> set[tuple[str, ...]]:
    w = _WORD.findall(text.lower())
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return []


def evaluation_grams(calls_dir: Path) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    for path in [*sorted(calls_dir.glob("*.json")), *sorted((ROOT / "bench" / "corpus").glob("*.json"))]:
        data = json.loads(path.read_text(encoding="utf-8"))
        node = data.get("calls", data.get("turns", [])) if isinstance(data, dict) else data
        for s in strings(node):
            out |= grams(s)
    return out


def add_calls_option(ap: argparse.ArgumentParser) -> None:
    """``--calls DIR``: the shared dev calls every imported line is checked against."""
    default = Path(os.environ.get("CALLCOACH_SHARED_DIR", ROOT.parent / "shared")) / "calls"
    ap.add_argument("--calls", type=Path, default=default)


def evaluation_or_none(calls_dir: Path) -> set[tuple[str, ...]] | None:
    """The evaluation sets' four-word sequences, or None (said on stderr) without the dev calls:
    nothing is imported unchecked."""
    if not calls_dir.is_dir():
        print(f"{calls_dir}: no evaluation calls to check against", file=sys.stderr)
        return None
    return evaluation_grams(calls_dir)


def key(text: str) -> str:
    return " ".join(_WORD.findall(text.lower().replace("ё", "е")))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("source", type=Path)
    add_calls_option(ap)
    args = ap.parse_args(argv)
    evaluation = evaluation_or_none(args.calls)
    if evaluation is None:
        return 2
    loaded: dict[str, list[dict[str, str]]] = {}
    for label in CLASSES:
        path = args.source / f"{label}.json"
        if not path.is_file():
            print(f"{label}: no file, skipped")
            continue
        items = json.loads(path.read_text(encoding="utf-8"))
        loaded[label] = [
            {
                "context": " ".join(str(i.get("context") or "").split()),
                "text": " ".join(str(i["text"]).split()),
            }
            for i in items
            if isinstance(i, dict) and str(i.get("text") or "").strip()
        ]
    owners: dict[str, set[str]] = {}
    for label, items in loaded.items():
        for i in items:
            owners.setdefault(key(i["text"]), set()).add(label)
    TARGET.mkdir(parents=True, exist_ok=True)
    for label, items in loaded.items():
        kept, seen, why = [], set(), Counter[str]()
        for i in items:
            k = key(i["text"])
            if not k or k in seen:
                why["duplicate"] += 1
                continue
            seen.add(k)
            if len(owners[k]) > 1:
                why["in two classes"] += 1
                continue
            if grams(i["text"]) & evaluation:
                why["text overlaps an evaluation set"] += 1
                continue
            if i["context"] and grams(i["context"]) & evaluation:
                i = {"context": "", "text": i["text"]}  # the line stands; its context goes
                why["context dropped (overlap)"] += 1
            kept.append(i)
        (TARGET / f"{label}.json").write_text(
            json.dumps(kept, ensure_ascii=False, indent=0) + "\n", encoding="utf-8"
        )
        print(f"{label}: {len(items)} read, {len(kept)} kept; {dict(why)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
