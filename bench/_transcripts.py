"""Transcripts of the evaluation recordings, kept with the project.

Speech recognition is nearly all of an accuracy run's time: on a 2-core machine the dev calls
take about twenty minutes to transcribe, and the transcript cache does not outlive a machine, so
a change to the text stage was seldom checked from the recordings at all. A pack holds the
recogniser's output per recording, under the analyser's own transcript-cache key (audio hash +
Whisper model + language): seeding the cache from it skips exactly the recordings whose audio and
recogniser are unchanged, and anything else is transcribed as before. The findings are always
computed afresh.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from callcoach.pipeline.cache import AsrCache, asr_from_dict, asr_to_dict

PACKS = Path(__file__).resolve().parent / "transcripts"


def seed(cache: AsrCache, packs: Iterable[Path]) -> int:
    """Copy every pack's transcripts the cache lacks into it; returns how many were added."""
    added = 0
    for pack in packs:
        with gzip.open(pack, "rt", encoding="utf-8") as f:
            entries: dict[str, Any] = json.load(f)["transcripts"]
        for key, data in entries.items():
            if cache.get(key) is None:
                cache.put(key, asr_from_dict(data))
                added += 1
    return added


def save(cache: AsrCache, keys: Iterable[str], pack: Path) -> int:
    """Write the cached transcripts of ``keys`` to ``pack`` (gzip JSON); returns how many."""
    entries = {}
    for key in sorted(set(keys)):
        result = cache.get(key)
        if result is not None:
            entries[key] = asr_to_dict(result)
    pack.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0: the same transcripts give the same bytes, so a re-save does not churn git
    with open(pack, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(json.dumps({"transcripts": entries}, ensure_ascii=False, sort_keys=True).encode())
    return len(entries)
