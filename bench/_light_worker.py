"""``callcoach worker`` with a light analyzer (no speech model) for bench/scale.py: on a 2-core
machine the real model analyses a few calls a minute, so 500 calls would measure only Whisper.
The light analyzer decodes the recording (real work on real audio) and answers fixed findings;
everything else — broker, database, Redis budget, portal lookups, downloads, write-backs — is the
real worker's. bench/scale.py says so in its output.

    python bench/_light_worker.py [--queues analysis,io] [--concurrency 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callcoach.config import load_settings
from callcoach.logs import setup_logging
from callcoach.pipeline import audio
from callcoach.pipeline.models import (
    Category,
    Findings,
    Objection,
    Segment,
    Sentiment,
    SentimentScore,
    Topic,
)
from callcoach.workflow.celery_app import KINDS
from callcoach.workflow.worker import serve_worker


class LightAnalyzer:
    def load(self) -> None:
        pass

    def state(self) -> dict[str, Any]:
        return {"whisper": {"loaded": False, "light": True}, "text_loaded": False}

    def analyze_file(self, path: Path, *, categories: Sequence[Category] | None = None, **_: Any) -> Findings:
        started = time.perf_counter()
        decoded = audio.decode(path, max_seconds=7200)
        return Findings(
            file=str(path),
            duration=decoded.duration,
            segments=[
                Segment(speaker="client", start=0.0, end=3.0, text="Дорого у вас."),
                Segment(speaker="manager", start=3.0, end=6.0, text="Давайте посчитаем выгоду."),
            ],
            objections=[
                Objection(
                    category="price",
                    category_name="Высокая цена",
                    quote="Дорого у вас.",
                    start=0.0,
                    confidence=0.9,
                    recommendation="Покажите выгоду в деньгах.",
                    handled=True,
                )
            ],
            sentiment=Sentiment(overall=SentimentScore(label="neutral", score=0.7)),
            topic=Topic(label="sales", score=0.8),
            models={"asr": f"light (decode only, {time.perf_counter() - started:.3f} s)"},
        )

    def propose_categories(self, quotes: Any, *, existing_codes: Any = ()) -> list[Any]:
        return []

    def classify_text(self, text: str, categories: Any = None) -> list[Any]:
        return []


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    ap.add_argument("--queues", default=",".join(KINDS))
    ap.add_argument("--concurrency", type=int, default=3)
    args = ap.parse_args()
    settings = load_settings()
    setup_logging(settings.log_level)
    serve_worker(settings, args.queues.split(","), args.concurrency, analyzer=LightAnalyzer())
    return 0


if __name__ == "__main__":
    sys.exit(main())
