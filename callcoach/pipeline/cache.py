"""JSON file caches: Findings keyed by audio hash + settings + model versions, and transcripts."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from callcoach.pipeline.asr import AsrResult, AsrSegment
from callcoach.pipeline.models import Findings, Word


def pipeline_fingerprint(root: Path | None = None) -> str:
    """A hash of the pipeline's own code and reference data, part of every findings cache key:
    cached findings were made by one version of the classifiers and their training lines, and a
    hand-bumped version number was forgotten more than once, which served stale findings. The
    shipped weights (``.npz``, the tuned e5's change) count as code."""
    h = hashlib.sha256()
    root = root or Path(__file__).resolve().parent
    for path in sorted(p for p in root.rglob("*") if p.suffix in {".py", ".json", ".npz"} and p.is_file()):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class FindingsCache:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def key(self, audio_hash: str, config: dict[str, object]) -> str:
        blob = json.dumps({"audio": audio_hash, **config}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:40]

    def get(self, key: str) -> Findings | None:
        path = self.folder / f"{key}.json"
        try:
            return Findings.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # missing or damaged entry: analyse again
            return None

    def put(self, key: str, findings: Findings) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(findings.model_dump_json())
        os.replace(tmp, self.folder / f"{key}.json")


class AsrCache:
    """Transcripts keyed by audio hash + recogniser settings, apart from the findings.

    Speech recognition is by far the slowest stage; a change to a text model or a category set
    must not pay for it again, so the transcript is kept on its own.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def key(self, audio_hash: str, config: dict[str, object]) -> str:
        blob = json.dumps({"audio": audio_hash, **config}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:40]

    def get(self, key: str) -> AsrResult | None:
        path = self.folder / f"{key}.json"
        try:
            return asr_from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):  # missing or damaged entry: transcribe again
            return None

    def put(self, key: str, result: AsrResult) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(asr_to_dict(result), f, ensure_ascii=False)
        os.replace(tmp, self.folder / f"{key}.json")


def asr_to_dict(result: AsrResult) -> dict[str, Any]:
    """A transcript as plain JSON data (the cache's file layout)."""
    return {
        "language": result.language,
        "duration": result.duration,
        "segments": [
            {"start": s.start, "end": s.end, "text": s.text, "words": [w.model_dump() for w in s.words]}
            for s in result.segments
        ],
    }


def asr_from_dict(data: dict[str, Any]) -> AsrResult:
    """The inverse of ``asr_to_dict``; raises KeyError/TypeError/ValueError on a damaged entry."""
    return AsrResult(
        segments=[
            AsrSegment(
                start=float(s["start"]),
                end=float(s["end"]),
                text=str(s["text"]),
                words=[Word.model_validate(w) for w in s.get("words", [])],
            )
            for s in data["segments"]
        ],
        language=str(data["language"]),
        duration=float(data["duration"]),
    )
