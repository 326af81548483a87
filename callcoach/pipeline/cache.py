"""A JSON file cache of Findings keyed by audio hash + settings + model versions."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from callcoach.pipeline.models import Findings


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
