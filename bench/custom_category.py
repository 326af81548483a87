"""How long a portal waits for its first custom category after a restart.

usage: python bench/custom_category.py [--data DIR]

Three fresh processes over one data dir, as a server's restarts would be, each timing its text
models' start and its first objection classification:
1. the standard categories in an empty data dir (the cold start: every reference line embedded);
2. after a restart, a custom category with a description and two examples (the learnt layer is
   fitted anew for the new set);
3. after another restart, a second custom category.
Each vector of a reference line is kept on disk once (``FittedModels.lines``), so steps 2 and 3
embed only the category's own lines; before, the vectors were kept per category set and each new
set embedded every reference line again, as long as step 1. Prints the three times and step 2
against step 1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CUSTOM = {
    "security": {
        "code": "security_review",
        "name": "Проверка безопасности",
        "description": "Сначала подрядчика проверяет служба безопасности.",
        "examples": ["Без заключения безопасников не подпишем", "Вас сперва проверит наша СБ"],
    },
    "license": {
        "code": "no_license",
        "name": "Нет лицензии",
        "description": "Клиенту нужна лицензия или сертификат регулятора.",
        "examples": ["Без сертификата ФСТЭК не купим", "Покажите лицензию, иначе разговора нет"],
    },
}


def step(data: Path, custom: str) -> None:
    """One process: build the text models, classify one line (``custom``: '' or a CUSTOM key)."""
    sys.path.insert(0, str(ROOT))
    from callcoach.config import Settings
    from callcoach.pipeline.models import Category
    from callcoach.pipeline.text_analysis import TextAnalyzer

    t0 = time.perf_counter()
    text = TextAnalyzer(Settings(data_dir=data, _env_file=None))  # type: ignore[call-arg]
    t1 = time.perf_counter()
    categories = [Category(**CUSTOM[custom])] if custom else None
    ranked = text.classify_text("без проверки нашей службой безопасности ничего не подпишем", categories)
    t2 = time.perf_counter()
    print(json.dumps({"start": t1 - t0, "first": t2 - t1, "top": ranked[0][0].code}))


def run(data: Path, custom: str) -> dict[str, float | str]:
    out = subprocess.run(
        [sys.executable, __file__, "--step", custom or "standard", "--data", str(data)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    result: dict[str, float | str] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--data", type=Path, help="an empty data dir to use (default: a temporary one)")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        step(args.data, "" if args.step == "standard" else args.step)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp)
        rows = [
            ("standard categories, empty data dir", run(data, "")),
            ("restart + a custom category", run(data, "security")),
            ("restart + another custom category", run(data, "license")),
        ]
    for name, r in rows:
        print(f"{name:38s} start {r['start']:6.1f} s  first classification {r['first']:6.1f} s  ({r['top']})")
    cold, custom = float(rows[0][1]["first"]), float(rows[1][1]["first"])
    print(f"first custom category after a restart: {custom / cold:.2f}× the cold start's classification")
    return 0


if __name__ == "__main__":
    sys.exit(main())
